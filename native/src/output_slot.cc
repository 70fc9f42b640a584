#include "output_slot.h"

#include <c10/core/CPUAllocator.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace torch_cpu {

namespace {

thread_local OutputSlot* tlArmed = nullptr;
c10::Allocator* baseAllocator = nullptr;
c10::DeleterFnPtr baseRawDeleter = nullptr;
OutputStats stats;

void keepJsMemory(void*) {}

// Raw deallocation of a JS buffer must never reach free(): the buffer belongs to V8.
void rawDelete(void* ptr) {
  if (tlArmed != nullptr && tlArmed->data() == ptr) return;
  if (baseRawDeleter != nullptr) baseRawDeleter(ptr);
}

std::string describe(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); i++) s += (i ? "," : "") + std::to_string(sizes[i]);
  return s + "]";
}

}  // namespace

class HookAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    OutputSlot* slot = tlArmed;
    if (slot != nullptr && slot->armed_ && !slot->taken_ && n == slot->bytes_) {
      slot->taken_ = true;
      return {slot->data_, slot->data_, &keepJsMemory, c10::Device(c10::DeviceType::CPU)};
    }
    return baseAllocator->allocate(n);
  }
  c10::DeleterFnPtr raw_deleter() const override { return baseRawDeleter ? &rawDelete : nullptr; }
};

void installAllocatorHook() {
  static std::once_flag once;
  std::call_once(once, [] {
    static HookAllocator hook;
    baseAllocator = c10::GetCPUAllocator();
    baseRawDeleter = baseAllocator->raw_deleter();
    // Priority above the default CPU allocator (registered at 0).
    c10::SetCPUAllocator(&hook, /*priority=*/1);
  });
}

const OutputStats& outputStats() { return stats; }

OutputSlot::OutputSlot(void* data, size_t bytes) : data_(data), bytes_(bytes) {}

OutputSlot::~OutputSlot() { disarm(); }

void OutputSlot::arm() {
  if (bytes_ == 0) return;
  armed_ = true;
  tlArmed = this;
}

void OutputSlot::disarm() {
  armed_ = false;
  if (tlArmed == this) tlArmed = nullptr;
}

void OutputSlot::deliver(at::Tensor result, at::IntArrayRef sizes, at::MemoryFormat format) {
  disarm();
  if (result.sizes() != sizes) {
    throw std::runtime_error("internal error: result has shape " + describe(result.sizes()) +
                             ", expected " + describe(sizes));
  }
  if (result.scalar_type() != at::kFloat) result = result.to(at::kFloat);
  if (result.numel() == 0) return;
  if (result.data_ptr() == data_ && result.is_contiguous(format)) {
    stats.zeroCopy++;
    return;
  }
  // The result may live in our buffer in another layout; move it out before overwriting.
  if (result.storage().data() == data_) result = result.clone(at::MemoryFormat::Contiguous);
  const auto options = at::TensorOptions().dtype(at::kFloat);
  // ChannelsLast (the only other format used) is how NHWC data looks through an NCHW view.
  at::Tensor dst = format == at::MemoryFormat::ChannelsLast
                       ? at::from_blob(data_, sizes, c10::get_channels_last_strides_2d(sizes), options)
                       : at::from_blob(data_, sizes, options);
  dst.copy_(result);
  stats.copied++;
}

}  // namespace torch_cpu
