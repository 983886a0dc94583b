#include "ddp/train/model_export.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/utils.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ddp/core/check.h"

namespace ddp {
namespace {

// torch::pickle_save's format (torch.save's zip: data.pkl plus one record per tensor storage), but
// without the torch.jit._pickle.restore_type_tag calls that pickle_save wraps around every dict:
// Python's torch.load (weights_only=True, its default since 2.6) refuses that global, while a
// plain dict of tensors is what it accepts.
std::vector<char> pickle_plain(const c10::IValue& value) {
  std::vector<char> pickle_data;
  torch::jit::Pickler pickler(
      [&](const char* buf, size_t n) { pickle_data.insert(pickle_data.end(), buf, buf + n); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    const char* bytes = static_cast<const char*>(data);
    out.insert(out.end(), bytes, bytes + n);
    return n;
  });
  torch::jit::writeArchiveAndTensors("data", pickle_data.data(), pickle_data.size(), pickler.tensorData(),
                                     writer);
  writer.writeEndOfFile();
  return out;
}

void write_pickle(const c10::IValue& value, const std::string& path) {
  const std::vector<char> bytes = pickle_plain(value);
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw InputError("cannot write " + path + ": " + std::strerror(errno) + "; choose another path");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("writing " + path + " failed: " + why);
  }
}

}  // namespace

void export_state_dict(torch::nn::Module& model, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& p : model.named_parameters()) dict.insert(p.key(), p.value().detach().cpu().contiguous());
  for (const auto& b : model.named_buffers()) dict.insert(b.key(), b.value().detach().cpu().contiguous());
  write_pickle(c10::IValue(dict), path);
}

void export_example(Classifier& model, int64_t channels, int64_t n, uint64_t seed, const std::string& path) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  const at::Tensor input = torch::randn({n, channels, 32, 32});
  const c10::Device device = model.parameters().front().device();
  model.eval();
  const at::Tensor logits = model.forward(input.to(device)).cpu();
  model.train();
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("input", input);
  dict.insert("logits", logits.contiguous());
  write_pickle(c10::IValue(dict), path);
}

}  // namespace ddp
