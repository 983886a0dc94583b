#include "ddp/data/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "ddp/core/check.h"
#include "ddp/core/files.h"

namespace ddp {
namespace {

using Clock = std::chrono::steady_clock;

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// A unique suffix for temporary names: ranks on other nodes may share data.root.
std::string temp_suffix() { return hostname() + "-" + std::to_string(::getpid()); }

std::string to_hex(const unsigned char* bytes, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) s[2 * i] = kDigits[bytes[i] >> 4], s[2 * i + 1] = kDigits[bytes[i] & 15];
  return s;
}

struct Md5 {
  Md5() : ctx(EVP_MD_CTX_new()) {
    DDP_CHECK(ctx && EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1, "OpenSSL MD5 init failed");
  }
  ~Md5() { EVP_MD_CTX_free(ctx); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const void* data, size_t n) {
    DDP_CHECK(EVP_DigestUpdate(ctx, data, n) == 1, "MD5 update failed");
  }
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    DDP_CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1, "MD5 final failed");
    return to_hex(out, len);
  }
  EVP_MD_CTX* ctx;
};

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

struct Progress {
  std::string label;
  Clock::time_point start = Clock::now();
  Clock::time_point last{};
  bool drawn = false;
  bool complete = false;
};

int draw_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(user);
  const auto t = Clock::now();
  const bool complete = total > 0 && now >= total;
  if (p->complete || (t - p->last < std::chrono::milliseconds(200) && !complete)) return 0;
  p->last = t;
  p->complete = complete;  // Drawn once at 100%, though curl calls again.
  const double secs = std::max(1e-3, std::chrono::duration<double>(t - p->start).count());
  const double mb = now / 1e6, rate = mb / secs;
  constexpr int kWidth = 30;
  if (total > 0) {
    const double frac = static_cast<double>(now) / total;
    const int filled = static_cast<int>(frac * kWidth);
    std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %.1f/%.1f MB %.1f MB/s ", p->label.c_str(),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, ' ').c_str(), 100 * frac, mb,
                 total / 1e6, rate);
  } else {
    std::fprintf(stderr, "\r%s %.1f MB %.1f MB/s ", p->label.c_str(), mb, rate);
  }
  std::fflush(stderr);
  p->drawn = true;
  return 0;
}

size_t write_to_file(char* data, size_t size, size_t n, void* user) {
  return std::fwrite(data, size, n, static_cast<FILE*>(user)) * size;
}

bool folder_complete(const ArchiveSpec& spec, const std::string& dir) {
  for (const auto& f : spec.files) {
    if (files::file_size(files::join(dir, f)) <= 0) return false;
  }
  return true;
}

std::string archive_error(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// Removes a path when it goes out of scope unless released.
struct TreeGuard {
  std::string path;
  ~TreeGuard() {
    if (!path.empty()) files::remove_tree(path);
  }
};

}  // namespace

std::string md5_hex(const void* data, size_t size) {
  Md5 md5;
  md5.update(data, size);
  return md5.hex();
}

std::string md5_file(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError("cannot read " + path + " for its checksum: " + std::strerror(errno));
  Md5 md5;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) md5.update(buf.data(), n);
  if (std::ferror(f.get())) throw InputError("error reading " + path + ": " + std::strerror(errno));
  return md5.hex();
}

void download_file(const std::string& url, const std::string& dest, bool progress) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const std::string part = dest + ".part-" + temp_suffix();
  FilePtr out(std::fopen(part.c_str(), "wb"));
  if (!out) {
    throw InputError("cannot write " + part + ": " + std::strerror(errno) + "; make data.root writable");
  }
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  DDP_CHECK(curl != nullptr, "curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {};
  Progress bar;
  bar.label = dest.substr(dest.find_last_of('/') + 1);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error, not a body to save.
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_to_file);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out.get());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // No hang on a stalled link: give up below 1 kB/s for 60 s.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (progress) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, draw_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &bar);
  }
  spdlog::info("downloading {} to {}", url, dest);
  const CURLcode rc = curl_easy_perform(c);
  if (bar.drawn) std::fprintf(stderr, "\n");
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  const bool write_failed = std::fflush(out.get()) != 0 || std::ferror(out.get());
  out.reset();
  if (rc != CURLE_OK || write_failed) {
    std::remove(part.c_str());
    std::string why;
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      why = "HTTP " + std::to_string(status) + "; check data.url";
    } else if (write_failed || rc == CURLE_WRITE_ERROR) {
      why = "cannot write " + part + " (disk full?)";
    } else {
      why = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(" (") + errbuf + ")" : "") +
            "; check the network, or put the archive at " + dest + " yourself";
    }
    throw InputError("download of " + url + " failed: " + why);
  }
  if (std::rename(part.c_str(), dest.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(part.c_str());
    throw InputError("cannot rename " + part + " to " + dest + ": " + err);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - bar.start).count();
  spdlog::info("downloaded {} ({:.1f} MB in {:.1f} s)", dest, files::file_size(dest) / 1e6, secs);
}

void extract_archive(const std::string& archive, const std::string& dir) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> in(archive_read_new(), archive_read_free);
  std::unique_ptr<struct archive, int (*)(struct archive*)> out(archive_write_disk_new(), archive_write_free);
  DDP_CHECK(in && out, "libarchive allocation failed");
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  // Entry names are checked below (no absolute path, no ".."), before they are put under `dir`.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  const std::string bad = "archive " + archive + " is corrupt or truncated: ";
  const std::string fix = "; delete it and download it again (data.download=true)";
  if (archive_read_open_filename(in.get(), archive.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw InputError(bad + archive_error(in.get()) + fix);
  }
  int entries = 0;
  for (;;) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw InputError(bad + archive_error(in.get()) + fix);
    const std::string name = archive_entry_pathname(entry);
    if (name.empty() || name[0] == '/' || ("/" + name + "/").find("/../") != std::string::npos) {
      throw InputError("archive " + archive + " holds an unsafe path '" + name + "'; not extracting it");
    }
    archive_entry_set_pathname(entry, files::join(dir, name).c_str());
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      throw InputError("cannot extract " + name + " from " + archive + ": " + archive_error(out.get()));
    }
    if (archive_entry_size(entry) > 0) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), buf, size, offset) < ARCHIVE_WARN) {
          throw InputError("cannot write " + files::join(dir, name) + ": " + archive_error(out.get()));
        }
      }
      if (r != ARCHIVE_EOF) throw InputError(bad + "entry " + name + ": " + archive_error(in.get()) + fix);
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      throw InputError("cannot finish " + files::join(dir, name) + ": " + archive_error(out.get()));
    }
    ++entries;
  }
  if (entries == 0) throw InputError(bad + "it holds no files" + fix);
}

FetchResult fetch_archive(const ArchiveSpec& spec, const std::string& root, bool progress) {
  const std::string target = files::join(root, spec.folder);
  // The files may sit in their folder under root or in root itself (as the readers accept).
  if (folder_complete(spec, target) || folder_complete(spec, root)) return FetchResult::kAlreadyPresent;
  const std::string why = files::make_directories(root);
  if (!why.empty()) throw InputError("cannot create data.root '" + root + "' (" + why + ")");
  const std::string archive = files::join(root, spec.archive_name);
  FetchResult result = FetchResult::kExtractedExisting;
  if (!files::is_regular_file(archive) || md5_file(archive) != spec.md5) {
    if (files::exists(archive))
      spdlog::warn("{} exists but its MD5 is not {}: fetching it again", archive, spec.md5);
    download_file(spec.url, archive, progress);
    const std::string got = md5_file(archive);
    if (got != spec.md5) {
      std::remove(archive.c_str());
      throw InputError("MD5 of " + spec.url + " is " + got + ", expected " + spec.md5 +
                       " (data.md5): the download is corrupt or data.url/data.md5 do not match; removed it");
    }
    result = FetchResult::kDownloaded;
  }
  TreeGuard tmp{files::join(root, ".extract-" + temp_suffix())};
  files::remove_tree(tmp.path);
  const std::string mk = files::make_directories(tmp.path);
  if (!mk.empty()) throw InputError("cannot create " + tmp.path + " (" + mk + ")");
  spdlog::info("extracting {} into {}", archive, root);
  extract_archive(archive, tmp.path);
  const std::string extracted = files::join(tmp.path, spec.folder);
  if (!folder_complete(spec, extracted)) {
    throw InputError("archive " + archive + " does not hold " + spec.folder +
                     "/ with every file of the "
                     "dataset (" +
                     spec.files.front() + ", ...); is data.url the right dataset?");
  }
  if (files::exists(target)) files::remove_tree(target);  // An incomplete earlier copy.
  if (std::rename(extracted.c_str(), target.c_str()) != 0 && !folder_complete(spec, target)) {
    throw InputError("cannot rename " + extracted + " to " + target + ": " + std::strerror(errno));
  }
  return result;
}

}  // namespace ddp
