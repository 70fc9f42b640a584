// Lets ATen write a kernel's result straight into memory that JavaScript owns.
//
// The addon allocates every output as a JS typed array (so V8's garbage collector
// owns it and frees it synchronously with the rest of the heap). ATen ops allocate
// their own outputs, so while an OutputSlot is armed, the first CPU allocation of
// exactly the slot's size on this thread is served from the JS buffer instead.
// `deliver` then checks where the result really landed and copies only if it is
// somewhere else (or in the wrong layout).
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>

namespace torch_cpu {

struct OutputStats {
  uint64_t zeroCopy = 0;
  uint64_t copied = 0;
};

/** Installs the allocator hook once; safe to call repeatedly. */
void installAllocatorHook();

const OutputStats& outputStats();

class OutputSlot {
 public:
  OutputSlot(void* data, size_t bytes);
  ~OutputSlot();
  OutputSlot(const OutputSlot&) = delete;
  OutputSlot& operator=(const OutputSlot&) = delete;

  /** From now on, the next allocation of exactly `bytes` on this thread uses the JS buffer. */
  void arm();
  /** Makes the JS buffer hold `result` laid out as `sizes` in `format`. */
  void deliver(at::Tensor result, at::IntArrayRef sizes,
               at::MemoryFormat format = at::MemoryFormat::Contiguous);
  void* data() const { return data_; }

 private:
  void disarm();
  void* data_;
  size_t bytes_;
  bool taken_ = false;
  bool armed_ = false;
  friend class HookAllocator;
};

}  // namespace torch_cpu
