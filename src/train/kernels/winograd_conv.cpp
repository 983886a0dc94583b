#include "train/kernels/winograd_conv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "ddp/core/check.h"

namespace ddp {
namespace {

// Note [Winograd layout]
// Tiles: output tile (a, b) of image n covers output rows 4a..4a+3 and columns 4b..4b+3 and reads
// input rows 4a-1..4a+4 and columns 4b-1..4b+4 (the -1 is the padding). Tile t = (n*th + a)*tw + b.
// The transformed input V and the products M are [36, T, C]: point p = 6*i + j of the 6x6
// transformed tile, then the tile, then the channel, so that M[p] = V[p] x U[p] is one plain
// matrix product per point and the channel (NHWC's innermost dimension) is the vector lane of
// every transform below.
constexpr int64_t kPoints = 36;
constexpr int64_t kBlock = 64;  // Channels transformed together (the lanes of one pass).

// The 1-d transforms, applied to 6 (or 4) lane vectors at s + k*ss, written to d + i*ds.
// B^T, the input transform (Lavin & Gray's F(4, 3)).
inline void input_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                     int64_t lanes) {
  for (int64_t c = 0; c < lanes; ++c) {
    const float s0 = s[c], s1 = s[ss + c], s2 = s[2 * ss + c], s3 = s[3 * ss + c], s4 = s[4 * ss + c],
                s5 = s[5 * ss + c];
    d[c] = 4.f * s0 - 5.f * s2 + s4;
    d[ds + c] = -4.f * (s1 + s2) + s3 + s4;
    d[2 * ds + c] = 4.f * (s1 - s2) - s3 + s4;
    d[3 * ds + c] = 2.f * (s3 - s1) - s2 + s4;
    d[4 * ds + c] = 2.f * (s1 - s3) - s2 + s4;
    d[5 * ds + c] = 4.f * s1 - 5.f * s3 + s5;
  }
}

// B, its transpose (backward of the input transform).
inline void input_t_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                       int64_t lanes) {
  for (int64_t c = 0; c < lanes; ++c) {
    const float v0 = s[c], v1 = s[ss + c], v2 = s[2 * ss + c], v3 = s[3 * ss + c], v4 = s[4 * ss + c],
                v5 = s[5 * ss + c];
    d[c] = 4.f * v0;
    d[ds + c] = 4.f * (v2 - v1 + v5) + 2.f * (v4 - v3);
    d[2 * ds + c] = -5.f * v0 - 4.f * (v1 + v2) - v3 - v4;
    d[3 * ds + c] = v1 - v2 + 2.f * (v3 - v4) - 5.f * v5;
    d[4 * ds + c] = v0 + v1 + v2 + v3 + v4;
    d[5 * ds + c] = v5;
  }
}

// A^T, the output transform: 6 values to 4.
inline void output_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                      int64_t lanes) {
  for (int64_t c = 0; c < lanes; ++c) {
    const float m0 = s[c], m1 = s[ss + c], m2 = s[2 * ss + c], m3 = s[3 * ss + c], m4 = s[4 * ss + c],
                m5 = s[5 * ss + c];
    const float p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
    d[c] = m0 + p12 + p34;
    d[ds + c] = d12 + 2.f * d34;
    d[2 * ds + c] = p12 + 4.f * p34;
    d[3 * ds + c] = d12 + 8.f * d34 + m5;
  }
}

// A, its transpose (backward of the output transform): 4 values to 6.
inline void output_t_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                        int64_t lanes) {
  for (int64_t c = 0; c < lanes; ++c) {
    const float g0 = s[c], g1 = s[ss + c], g2 = s[2 * ss + c], g3 = s[3 * ss + c];
    const float p02 = g0 + g2, p13 = g1 + g3;
    d[c] = g0;
    d[ds + c] = p02 + p13;
    d[2 * ds + c] = p02 - p13;
    d[3 * ds + c] = g0 + 2.f * g1 + 4.f * g2 + 8.f * g3;
    d[4 * ds + c] = g0 - 2.f * g1 + 4.f * g2 - 8.f * g3;
    d[5 * ds + c] = g3;
  }
}

// G, the weight transform: 3 values to 6.
inline void weight_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                      int64_t lanes) {
  constexpr float k6 = 1.f / 6, k12 = 1.f / 12, k24 = 1.f / 24;
  for (int64_t c = 0; c < lanes; ++c) {
    const float g0 = s[c], g1 = s[ss + c], g2 = s[2 * ss + c];
    const float p02 = g0 + g2;
    d[c] = 0.25f * g0;
    d[ds + c] = -k6 * (p02 + g1);
    d[2 * ds + c] = -k6 * (p02 - g1);
    d[3 * ds + c] = k24 * g0 + k12 * g1 + k6 * g2;
    d[4 * ds + c] = k24 * g0 - k12 * g1 + k6 * g2;
    d[5 * ds + c] = g2;
  }
}

// G^T, its transpose (backward of the weight transform): 6 values to 3.
inline void weight_t_1d(const float* __restrict__ s, int64_t ss, float* __restrict__ d, int64_t ds,
                        int64_t lanes) {
  constexpr float k6 = 1.f / 6, k12 = 1.f / 12, k24 = 1.f / 24;
  for (int64_t c = 0; c < lanes; ++c) {
    const float u0 = s[c], u1 = s[ss + c], u2 = s[2 * ss + c], u3 = s[3 * ss + c], u4 = s[4 * ss + c],
                u5 = s[5 * ss + c];
    const float p12 = u1 + u2, p34 = u3 + u4;
    d[c] = 0.25f * u0 - k6 * p12 + k24 * p34;
    d[ds + c] = k6 * (u2 - u1) + k12 * (u3 - u4);
    d[2 * ds + c] = k6 * (p34 - p12) + u5;
  }
}

// Shapes of one convolution's tiling.
struct Tiling {
  int64_t n, h, w;  // Batch and spatial size (input = output).
  int64_t th, tw;   // Tiles per column and per row.
  int64_t tiles() const { return n * th * tw; }
  static Tiling of(int64_t n, int64_t h, int64_t w) { return {n, h, w, (h + 3) / 4, (w + 3) / 4}; }
};

constexpr int64_t kGrain = 8;  // Tiles per at::parallel_for task.

// Runs f(t, n, a, b, c0, lanes, scratch) for every tile t = (n, a, b) and every block of
// `channels`, the tiles shared among the intra-op threads; scratch holds 2 x 36 x kBlock floats of
// the task's own.
template <class F>
void for_each_tile(const Tiling& g, int64_t channels, const F& f) {
  at::parallel_for(0, g.tiles(), kGrain, [&](int64_t begin, int64_t end) {
    float scratch[2 * kPoints * kBlock];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / (g.th * g.tw), a = (t / g.tw) % g.th, b = t % g.tw;
      for (int64_t c0 = 0; c0 < channels; c0 += kBlock)
        f(t, n, a, b, c0, std::min(kBlock, channels - c0), scratch);
    }
  });
}

// A size x size patch of an NHWC image, channels [c0, c0 + lanes), as lane vectors: element
// (k, j) starts at p + k * row + j * col.
struct Patch {
  const float* p;
  int64_t row, col;
};

// The patch of image n whose top-left pixel is (r0, s0): in place where it lies inside the image,
// else copied into buf ([size][size][lanes]) with zeros outside the image.
Patch read_patch(const float* x, const Tiling& g, int64_t C, int64_t n, int64_t r0, int64_t s0, int64_t c0,
                 int64_t lanes, int64_t size, float* buf) {
  if (r0 >= 0 && r0 + size <= g.h && s0 >= 0 && s0 + size <= g.w) {
    return {x + ((n * g.h + r0) * g.w + s0) * C + c0, g.w * C, C};
  }
  for (int64_t k = 0; k < size; ++k) {
    for (int64_t j = 0; j < size; ++j) {
      float* p = buf + (k * size + j) * lanes;
      const int64_t r = r0 + k, s = s0 + j;
      if (r >= 0 && r < g.h && s >= 0 && s < g.w) {
        std::memcpy(p, x + ((n * g.h + r) * g.w + s) * C + c0, lanes * sizeof(float));
      } else {
        std::fill(p, p + lanes, 0.f);
      }
    }
  }
  return {buf, size * lanes, lanes};
}

// Into the 36 points, [N, H, W, C] contiguous -> [36, T, C]: each tile's size x size patch (its
// top-left pixel at (4a + offset, 4b + offset), zeros outside the image) goes through the 1-d
// transform f (size values to 6) down its columns, then along its rows.
// The input transform: size 6, offset -1 (the padding), B^T. The backward of the output
// transform: size 4, offset 0, A.
template <class Transform1d>
at::Tensor to_points(const at::Tensor& nhwc, const Tiling& g, int64_t size, int64_t offset, Transform1d f) {
  const int64_t C = nhwc.size(3), T = g.tiles();
  at::Tensor points = at::empty({kPoints, T, C}, nhwc.options());
  const float* x = nhwc.const_data_ptr<float>();
  float* out = points.data_ptr<float>();
  for_each_tile(
      g, C, [&](int64_t t, int64_t n, int64_t a, int64_t b, int64_t c0, int64_t lanes, float* scratch) {
        float* mid = scratch + kPoints * kBlock;
        const Patch in = read_patch(x, g, C, n, 4 * a + offset, 4 * b + offset, c0, lanes, size, scratch);
        for (int64_t j = 0; j < size; ++j) f(in.p + j * in.col, in.row, mid + j * lanes, size * lanes, lanes);
        for (int64_t i = 0; i < 6; ++i)
          f(mid + i * size * lanes, lanes, out + (i * 6 * T + t) * C + c0, T * C, lanes);
      });
  return points;
}

// M [36, T, Co] -> y [N, Co, H, W] in channels_last (NHWC in memory): a tensor of its own, not a
// permuted view, so that callers may modify it in place.
at::Tensor output_transform(const at::Tensor& m, const Tiling& g) {
  const int64_t Co = m.size(2), T = g.tiles();
  at::Tensor y = at::empty({g.n, Co, g.h, g.w}, m.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* src = m.const_data_ptr<float>();
  float* out = y.data_ptr<float>();
  for_each_tile(g, Co,
                [&](int64_t t, int64_t n, int64_t a, int64_t b, int64_t c0, int64_t lanes, float* scratch) {
                  float *mid = scratch, *part = scratch + kPoints * kBlock;
                  const int64_t r0 = 4 * a, s0 = 4 * b;
                  const bool whole = r0 + 4 <= g.h && s0 + 4 <= g.w;
                  for (int64_t i = 0; i < 6; ++i) {
                    output_1d(src + (i * 6 * T + t) * Co + c0, T * Co, mid + i * 4 * lanes, lanes, lanes);
                  }
                  float* dst = part;
                  int64_t row = 4 * lanes, col = lanes;
                  if (whole) {
                    dst = out + ((n * g.h + r0) * g.w + s0) * Co + c0;
                    row = g.w * Co;
                    col = Co;
                  }
                  for (int64_t j = 0; j < 4; ++j)
                    output_1d(mid + j * lanes, 4 * lanes, dst + j * col, row, lanes);
                  if (!whole) {
                    for (int64_t i = 0; i < 4 && r0 + i < g.h; ++i) {
                      for (int64_t j = 0; j < 4 && s0 + j < g.w; ++j) {
                        std::memcpy(out + ((n * g.h + r0 + i) * g.w + s0 + j) * Co + c0,
                                    part + (i * 4 + j) * lanes, lanes * sizeof(float));
                      }
                    }
                  }
                });
  return y;
}

// Backward of the input transform: dV [36, T, C] -> dx [N, C, H, W] in channels_last. Neighbouring tiles
// overlap by two rows and columns, so each image is accumulated by one task.
at::Tensor input_transform_backward(const at::Tensor& dv, const Tiling& g) {
  const int64_t C = dv.size(2), T = g.tiles();
  // (at::zeros ignores a memory format in its options: empty + zero_.)
  at::Tensor dx =
      at::empty({g.n, C, g.h, g.w}, dv.options().memory_format(at::MemoryFormat::ChannelsLast)).zero_();
  const float* src = dv.const_data_ptr<float>();
  float* out = dx.data_ptr<float>();
  at::parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
    float mid[kPoints * kBlock];
    float part[kPoints * kBlock];
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t a = 0; a < g.th; ++a) {
        for (int64_t b = 0; b < g.tw; ++b) {
          const int64_t t = (n * g.th + a) * g.tw + b, r0 = 4 * a - 1, s0 = 4 * b - 1;
          for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
            const int64_t lanes = std::min(kBlock, C - c0);
            for (int64_t i = 0; i < 6; ++i) {
              input_t_1d(src + (i * 6 * T + t) * C + c0, T * C, mid + i * 6 * lanes, lanes, lanes);
            }
            for (int64_t j = 0; j < 6; ++j)
              input_t_1d(mid + j * lanes, 6 * lanes, part + j * lanes, 6 * lanes, lanes);
            for (int64_t k = 0; k < 6; ++k) {
              const int64_t r = r0 + k;
              if (r < 0 || r >= g.h) continue;
              for (int64_t j = 0; j < 6; ++j) {
                const int64_t s = s0 + j;
                if (s < 0 || s >= g.w) continue;
                float* __restrict__ d = out + ((n * g.h + r) * g.w + s) * C + c0;
                const float* __restrict__ p = part + (k * 6 + j) * lanes;
                for (int64_t c = 0; c < lanes; ++c) d[c] += p[c];
              }
            }
          }
        }
      }
    }
  });
  return dx;
}

// Runs f(ci, c0, lanes, scratch) for every input channel ci and every block of the output
// channels, the input channels shared among the intra-op threads; scratch holds 6 x 3 x kBlock
// floats of the task's own.
template <class F>
void for_each_weight_block(int64_t ci_count, int64_t co_count, const F& f) {
  at::parallel_for(0, ci_count, kGrain, [&](int64_t begin, int64_t end) {
    float scratch[6 * 3 * kBlock];
    for (int64_t ci = begin; ci < end; ++ci) {
      for (int64_t c0 = 0; c0 < co_count; c0 += kBlock) f(ci, c0, std::min(kBlock, co_count - c0), scratch);
    }
  });
}

// w [Co, Ci, 3, 3] -> U [36, Ci, Co]: U[6i + j] = (G w G^T)[i][j], lanes over Co.
at::Tensor weight_transform(const at::Tensor& w) {
  const int64_t Co = w.size(0), Ci = w.size(1);
  const at::Tensor wt = w.permute({2, 3, 1, 0}).contiguous();  // [3, 3, Ci, Co]
  at::Tensor u = at::empty({kPoints, Ci, Co}, w.options());
  const float* src = wt.const_data_ptr<float>();
  float* out = u.data_ptr<float>();
  const int64_t plane = Ci * Co;
  for_each_weight_block(Ci, Co, [&](int64_t ci, int64_t c0, int64_t lanes, float* mid) {
    const float* s = src + ci * Co + c0;
    for (int64_t l = 0; l < 3; ++l) weight_1d(s + l * plane, 3 * plane, mid + l * lanes, 3 * lanes, lanes);
    for (int64_t i = 0; i < 6; ++i) {
      weight_1d(mid + i * 3 * lanes, lanes, out + (i * 6 * Ci + ci) * Co + c0, plane, lanes);
    }
  });
  return u;
}

// dU [36, Ci, Co] -> dw shaped and strided like w.
at::Tensor weight_transform_backward(const at::Tensor& du, const at::Tensor& w) {
  const int64_t Co = w.size(0), Ci = w.size(1);
  at::Tensor dwt = at::empty({3, 3, Ci, Co}, du.options());
  const float* src = du.const_data_ptr<float>();
  float* out = dwt.data_ptr<float>();
  const int64_t plane = Ci * Co;
  for_each_weight_block(Ci, Co, [&](int64_t ci, int64_t c0, int64_t lanes, float* mid) {
    for (int64_t i = 0; i < 6; ++i) {
      weight_t_1d(src + (i * 6 * Ci + ci) * Co + c0, plane, mid + i * 3 * lanes, lanes, lanes);
    }
    float* d = out + ci * Co + c0;
    for (int64_t l = 0; l < 3; ++l) weight_t_1d(mid + l * lanes, 3 * lanes, d + l * plane, 3 * plane, lanes);
  });
  at::Tensor dw = at::empty_like(w);
  dw.copy_(dwt.permute({3, 2, 0, 1}));
  return dw;
}

class WinogradConv3x3 : public torch::autograd::Function<WinogradConv3x3> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) {
    const Tiling g = Tiling::of(x.size(0), x.size(2), x.size(3));
    const at::Tensor u = weight_transform(w);
    const at::Tensor v = to_points(x.permute({0, 2, 3, 1}).contiguous(), g, 6, -1, input_1d);
    at::Tensor y = output_transform(at::bmm(v, u), g);
    ctx->save_for_backward({v, u, w});
    ctx->saved_data["n"] = g.n;
    ctx->saved_data["h"] = g.h;
    ctx->saved_data["w"] = g.w;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The kernels work on raw memory: their results carry no autograd history of their own.
    DDP_CHECK(!at::GradMode::is_enabled(),
              "winograd_conv3x3 has no double backward (create_graph=true); use train.conv_algorithm=direct");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &v = saved[0], &u = saved[1], &w = saved[2];
    const Tiling g =
        Tiling::of(ctx->saved_data["n"].toInt(), ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt());
    const at::Tensor dm = to_points(grads[0].permute({0, 2, 3, 1}).contiguous(), g, 4, 0, output_t_1d);
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = input_transform_backward(at::bmm(dm, u.transpose(1, 2)), g);
    }
    if (ctx->needs_input_grad(1)) {
      dw = weight_transform_backward(at::bmm(v.transpose(1, 2), dm), w);
    }
    return {dx, dw};
  }
};

}  // namespace

int winograd_parallel_threads() {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, 4096, 1, [&](int64_t, int64_t) { seen |= uint64_t{1} << (at::get_thread_num() % 64); });
  return __builtin_popcountll(seen.load());
}

bool winograd_applies(const at::Tensor& x, const at::Tensor& w) {
  return x.dim() == 4 && w.dim() == 4 && x.device().is_cpu() && w.device().is_cpu() &&
         x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && w.size(2) == 3 && w.size(3) == 3 &&
         w.size(1) == x.size(1) && x.size(2) > 0 && x.size(3) > 0 &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& w) {
  DDP_CHECK(winograd_applies(x, w),
            "winograd_conv3x3 needs fp32 CPU tensors x [N, C, H, W] and w [Cout, C, 3, 3] "
            "outside autocast; got x "
                << x.sizes() << " " << x.scalar_type() << " and w " << w.sizes() << " " << w.scalar_type());
  return WinogradConv3x3::apply(x, w);
}

}  // namespace ddp
