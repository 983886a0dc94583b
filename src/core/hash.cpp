#include "ddp/core/hash.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "ddp/core/check.h"

namespace ddp {

uint64_t fnv1a64_of_file(const std::string& path, uint64_t basis) {
  std::ifstream in(path, std::ios::binary);
  DDP_CHECK(static_cast<bool>(in), "cannot read " << path << ": " << std::strerror(errno));
  Fnv1a64 hash(basis);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    hash.add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return hash.value();
}

}  // namespace ddp
