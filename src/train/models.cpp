#include "ddp/train/models.h"

#include <torch/nn.h>

#include "ddp/core/check.h"
#include "train/kernels/winograd_conv.h"

namespace ddp {
namespace {

namespace nn = torch::nn;

class SeedCnn : public Classifier {
 public:
  SeedCnn(int64_t in_channels, int64_t classes) {
    model1_ = register_module(
        "model1",
        nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_channels, 32, 5).padding(2)), nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(32, 32, 5).padding(2)), nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)), nn::MaxPool2d(2), nn::Flatten(),
                       nn::Linear(64 * 4 * 4, 64), nn::Linear(64, classes)));
  }
  at::Tensor forward(const at::Tensor& x) override { return model1_->forward(x); }

 private:
  nn::Sequential model1_{nullptr};
};

// 3x3 conv (no bias) -> BatchNorm -> ReLU; parameters "conv.weight", "bn.weight", "bn.bias".
class ConvBnImpl : public torch::nn::Module {
 public:
  ConvBnImpl(int64_t cin, int64_t cout, ConvAlgorithm algorithm)
      : winograd_(algorithm == ConvAlgorithm::kAuto && cin >= kWinogradMinChannels) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(cin, cout, 3).padding(1).bias(false)));
    bn_ = register_module("bn", nn::BatchNorm2d(cout));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor& w = conv_->weight;
    at::Tensor y = winograd_ && winograd_applies(x, w) ? winograd_conv3x3(x, w) : conv_->forward(x);
    return bn_->forward(y).relu_();
  }

 private:
  bool winograd_;
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvBn);

class ResNet9 : public Classifier {
 public:
  ResNet9(int64_t in_channels, int64_t classes, ConvAlgorithm algorithm) {
    auto conv_bn = [algorithm](int64_t cin, int64_t cout) { return ConvBn(cin, cout, algorithm); };
    prep_ = register_module("prep", conv_bn(in_channels, 64));
    layer1_ = register_module("layer1", nn::Sequential(conv_bn(64, 128), nn::MaxPool2d(2)));
    res1_ = register_module("res1", nn::Sequential(conv_bn(128, 128), conv_bn(128, 128)));
    layer2_ = register_module("layer2", nn::Sequential(conv_bn(128, 256), nn::MaxPool2d(2)));
    layer3_ = register_module("layer3", nn::Sequential(conv_bn(256, 512), nn::MaxPool2d(2)));
    res3_ = register_module("res3", nn::Sequential(conv_bn(512, 512), conv_bn(512, 512)));
    fc_ = register_module("fc", nn::Linear(nn::LinearOptions(512, classes).bias(false)));
  }
  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = prep_->forward(input);
    x = layer1_->forward(x);
    x = x + res1_->forward(x);
    x = layer2_->forward(x);
    x = layer3_->forward(x);
    x = x + res3_->forward(x);
    x = at::amax(x, {2, 3});
    return fc_->forward(x) * 0.125;
  }

 private:
  ConvBn prep_{nullptr};
  nn::Sequential layer1_{nullptr}, res1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, res3_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

std::shared_ptr<Classifier> make_model(ModelKind kind, int64_t in_channels, int64_t num_classes,
                                       ConvAlgorithm conv) {
  switch (kind) {
    case ModelKind::kSeedCnn:
      return std::make_shared<SeedCnn>(in_channels, num_classes);
    case ModelKind::kResNet9:
      return std::make_shared<ResNet9>(in_channels, num_classes, conv);
  }
  DDP_CHECK(false, "unknown model kind " << static_cast<int>(kind));
  return nullptr;
}

std::shared_ptr<Classifier> make_model(const std::string& name, int64_t in_channels, int64_t num_classes,
                                       ConvAlgorithm conv) {
  return make_model(model_kind(name), in_channels, num_classes, conv);
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace ddp
