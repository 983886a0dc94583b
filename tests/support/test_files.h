// Helpers for tests that write their own fixtures.
#pragma once

#include <exception>
#include <functional>
#include <string>

#include "ddp/core/check.h"
#include "ddp/core/files.h"

namespace ddp::testing {

// A fresh temporary directory, removed with everything in it when the object goes out of scope.
class TempDir {
 public:
  TempDir() : path_(files::make_temp_directory("ddptest_")) {}
  ~TempDir() { files::remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The message of the InputError that `fn` throws, or "(no error)".
inline std::string input_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// The message of the exception (any std::exception) that `fn` throws, or "(no error)".
inline std::string error_text_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace ddp::testing
