// FNV-1a, 64 bits: the one non-cryptographic hash of ddptrain, for checksums and fingerprints that
// every rank and every run computes alike (checkpoint payloads, the parameter shapes of a model).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ddp {

class Fnv1a64 {
 public:
  static constexpr uint64_t kOffsetBasis = 14695981039346656037ull;
  static constexpr uint64_t kPrime = 1099511628211ull;

  explicit Fnv1a64(uint64_t basis = kOffsetBasis) : hash_(basis) {}
  // Hashes `size` more bytes.
  void add(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) hash_ = (hash_ ^ p[i]) * kPrime;
  }
  // Hashes the bytes of one value of a trivially copyable type.
  template <typename T>
  void add_value(const T& value) {
    add(&value, sizeof(value));
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_;
};

// FNV-1a 64 of a file's bytes, from `basis`; throws ddp::Error when the file cannot be read.
uint64_t fnv1a64_of_file(const std::string& path, uint64_t basis = Fnv1a64::kOffsetBasis);

}  // namespace ddp
