// A growable 64-byte-aligned float scratch buffer (packing panels, per-thread workspaces).
// Kept thread_local by its users, so it is allocated once per thread and reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace mt {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(ptr_); }

  /** At least n floats, 64-byte aligned; contents are not preserved when it grows. */
  float* get(int64_t n) {
    size_t want = n < 1 ? 1 : (size_t)n;
    if (want > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      void* p = nullptr;
      size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
      if (posix_memalign(&p, 64, bytes) != 0) std::abort();
      ptr_ = static_cast<float*>(p);
      cap_ = bytes / sizeof(float);
    }
    return ptr_;
  }

 private:
  float* ptr_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace mt
