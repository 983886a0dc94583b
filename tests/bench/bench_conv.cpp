// 3x3 convolutions of ResNet-9, forward + backward (input and weight gradients), one layer at a
// time: LibTorch's at::conv2d (oneDNN's direct fp32 convolution, what PyTorch runs) against
// ddp::winograd_conv3x3 (F(4x4, 3x3)), NHWC, fp32, at the trainer's batch. Also prints the
// largest relative difference of the two outputs. The last row totals the layers as ResNet-9 runs
// them with train.conv_algorithm=auto: conv2d where the input has fewer than kWinogradMinChannels
// channels (prep), Winograd elsewhere. Prints a table; asserts nothing about time.
//
// Each cell is the median of `reps` runs after two warm-up runs.
//
// usage: bench_conv [threads=1] [batch=64] [reps=5]
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "ddp/train/models.h"
#include "train/kernels/winograd_conv.h"

namespace {

using Clock = std::chrono::steady_clock;

double median_ms(const std::function<void()>& f, int reps) {
  f();
  f();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 64;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  // As ddptrain's main(): keep freed buffers in the heap instead of faulting them in every call.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  at::set_num_threads(threads);
  torch::manual_seed(0);
  struct Layer {
    const char* name;
    int64_t cin, cout, side, count;  // count: how many such convolutions ResNet-9 has.
  };
  const Layer layers[] = {{"prep", 3, 64, 32, 1},      {"layer1", 64, 128, 32, 1}, {"res1", 128, 128, 16, 2},
                          {"layer2", 128, 256, 16, 1}, {"layer3", 256, 512, 8, 1}, {"res3", 512, 512, 4, 2}};
  std::printf("3x3 conv forward+backward, fp32 NHWC, batch %lld, %d thread(s), median of %d\n",
              static_cast<long long>(batch), threads, reps);
  std::printf("%-7s | %-16s | %5s | %-12s | %-12s | %7s | %s\n", "layer", "Cin->Cout @ side", "count",
              "conv2d ms", "winograd ms", "speedup", "max rel diff");
  double total_direct = 0, total_winograd = 0;
  for (const Layer& l : layers) {
    at::Tensor x = torch::randn({batch, l.cin, l.side, l.side}).contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor w = (torch::randn({l.cout, l.cin, 3, 3}) * 0.05).contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor gy = torch::randn({batch, l.cout, l.side, l.side}).contiguous(at::MemoryFormat::ChannelsLast);
    x.requires_grad_(l.cin > 3);  // The first layer's input (the images) needs no gradient.
    w.requires_grad_();
    const double direct = median_ms([&] { at::conv2d(x, w, {}, 1, 1).backward(gy); }, reps);
    const double winograd = median_ms([&] { ddp::winograd_conv3x3(x, w).backward(gy); }, reps);
    torch::NoGradGuard no_grad;
    const at::Tensor a = at::conv2d(x, w, {}, 1, 1), b = ddp::winograd_conv3x3(x, w);
    const double diff = (a - b).abs().max().item<double>() / a.abs().max().item<double>();
    std::printf("%-7s | %4lld->%-4lld @ %-3lld | %5lld | %12.1f | %12.1f | %6.2fx | %.1e\n", l.name,
                static_cast<long long>(l.cin), static_cast<long long>(l.cout), static_cast<long long>(l.side),
                static_cast<long long>(l.count), direct, winograd, direct / winograd, diff);
    total_direct += direct * l.count;
    total_winograd += (l.cin < ddp::kWinogradMinChannels ? direct : winograd) * l.count;
  }
  std::printf("%-7s | %-16s | %5s | %12.1f | %12.1f | %6.2fx |\n", "ResNet-9", "(x count, auto)", "",
              total_direct, total_winograd, total_direct / total_winograd);
  return 0;
}
