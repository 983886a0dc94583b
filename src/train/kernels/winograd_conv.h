// 3x3 convolution (stride 1, padding 1, no bias) by Winograd's minimal filtering F(4x4, 3x3),
// for fp32 on the CPU, with its own backward.
//
// Why: a 3x3 convolution done directly costs 9 multiply-adds per output and input channel pair;
// F(4x4, 3x3) computes each 4x4 output tile from a 6x6 input tile with 36 (2.25 per output),
// so the bulk of the work becomes 36 matrix products [tiles x Cin] x [Cin x Cout] (at::bmm).
// oneDNN's fp32 CPU convolutions are direct, and already at this CPU's fp32 matrix-product
// ceiling, so this is the one way a step gets cheaper without lowering the precision.
// It is what cuDNN calls WINOGRAD_NONFUSED, and the algorithm of Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks" (CVPR 2016), with their F(4x4, 3x3) matrices.
//
// Numerics: the same convolution up to fp32 rounding; the transforms add a relative error of
// about 1e-6..1e-5 against a direct convolution (tests/unit/winograd_conv_test.cpp bounds it).
// The transforms do not depend on how the tiles are shared among threads; the products are
// at::bmm, whose summation order may depend on the thread count. Replicas run the same thread
// count, so every replica computes the same numbers.
//
// Layout: any input memory format is accepted; the work is done in NHWC and the output is an
// NCHW tensor with channels_last strides (its own storage, not a view).
//
// Memory: the backward keeps the transformed input (2.25x the input) and weights (4x the weights).
#pragma once

#include <ATen/core/Tensor.h>

namespace ddp {

// True when winograd_conv3x3 can stand in for conv2d(x, w, padding=1) here: x is a 4-d fp32
// CPU tensor, w is [Cout, Cin, 3, 3] fp32 with Cin == x's channels, and CPU autocast is off
// (autocast's bf16 convolutions stay with oneDNN).
bool winograd_applies(const at::Tensor& x, const at::Tensor& w);

// conv2d(x, w, stride 1, padding 1, no bias) with autograd support for x and w.
// Requires winograd_applies(x, w).
// No double backward: a backward under create_graph=true throws.
at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& w);

// How many threads at::parallel_for gives the transforms at the current at::get_num_threads(): 1
// where this build has no OpenMP for them (cmake/torch_openmp.cmake).
int winograd_parallel_threads();

}  // namespace ddp
