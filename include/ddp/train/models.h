// The image classifiers, chosen by name.
//
//   seed_cnn  the seed tutorial's network, layer for layer: Conv2d(C,32,5,p2) MaxPool2
//             Conv2d(32,32,5,p2) MaxPool2 Conv2d(32,64,5,p2) MaxPool2 Flatten Linear(1024,64)
//             Linear(64,10); no activations (as in the seed). 145,578 parameters for C=3.
//             Parameter names match a PyTorch `self.model1 = nn.Sequential(...)` module.
//   resnet9   the fast CIFAR-10 ResNet-9 (Page, "How to train your ResNet"): prep conv 64,
//             layer1 conv 128 + maxpool + residual(2 x conv 128), layer2 conv 256 + maxpool,
//             layer3 conv 512 + maxpool + residual(2 x conv 512), global max pool, linear to
//             the classes (no bias), output scaled by 0.125. Every conv is 3x3 conv-BN-ReLU.
//
// ConvAlgorithm (train.conv_algorithm) picks how ResNet-9's 3x3 convolutions are computed:
//   kAuto    Winograd F(4x4, 3x3) (ddp/winograd_conv.h) for each conv with at least
//            kWinogradMinChannels input channels while it runs in fp32 on the CPU, LibTorch's
//            conv2d everywhere else (CUDA, where cuDNN picks its own algorithm; bf16/fp16
//            autocast; the 3-channel first layer, where the transforms cost more than they save).
//   kDirect  LibTorch's conv2d always: what PyTorch runs.
// Parameters, their names and checkpoints are the same either way.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "ddp/config/config.h"

namespace ddp {

constexpr int64_t kWinogradMinChannels = 16;

class Classifier : public torch::nn::Module {
 public:
  // images [B, C, 32, 32] -> logits [B, classes]
  virtual at::Tensor forward(const at::Tensor& images) = 0;
};

std::shared_ptr<Classifier> make_model(ModelKind kind, int64_t in_channels = 3, int64_t num_classes = 10,
                                       ConvAlgorithm conv = ConvAlgorithm::kAuto);
// By name ("seed_cnn", "resnet9"); InputError for an unknown one.
std::shared_ptr<Classifier> make_model(const std::string& name, int64_t in_channels = 3,
                                       int64_t num_classes = 10, ConvAlgorithm conv = ConvAlgorithm::kAuto);

int64_t parameter_count(const torch::nn::Module& module);

}  // namespace ddp
