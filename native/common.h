// Shared pieces of the ragtune addon: the tensor handle, the error choke point, argument decoding.
//
// One native handle per JS Tensor (like tch-rs' C_tensor): a Napi::External owning a Handle that owns one
// at::Tensor. dispose() resets it early; the External's finalizer is only a safety net for forgotten tensors.
// Every exported function runs inside guard(), which turns any libtorch or C++ exception into a JS TorchError
// (like tch-rs' PROTECT macro) so a bad shape never aborts the process.
#pragma once

#include <napi.h>
#include <torch/torch.h>
// libtorch ≥ 2.9 keeps the version macros in torch/headeronly/version.h.
#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#else
#include <torch/version.h>
#endif

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#define RAGTUNE_TORCH_AT_LEAST(MAJ, MIN) \
  (TORCH_VERSION_MAJOR > (MAJ) || (TORCH_VERSION_MAJOR == (MAJ) && TORCH_VERSION_MINOR >= (MIN)))

namespace ragtune {

// libtorch 1.13 has its own c10::optional; 2.x aliases it to std::optional (and newer releases deprecate it).
#if RAGTUNE_TORCH_AT_LEAST(2, 0)
template <class T>
using Opt = std::optional<T>;
inline constexpr auto kNone = std::nullopt;
#else
template <class T>
using Opt = c10::optional<T>;
inline constexpr auto kNone = c10::nullopt;
#endif

struct Handle {
  at::Tensor tensor;
  bool alive = true;
};

// Live native tensors: created minus freed (dispose or finalizer). Tests use it to find leaks.
extern std::atomic<int64_t> gLiveTensors;

// Thrown inside guard() for errors that are ours rather than libtorch's (bad argument kinds, disposed tensors).
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
at::Tensor& unwrap(const Napi::Value& v, const char* what = "tensor");
bool isTensor(const Napi::Value& v);

at::ScalarType parseDtype(const std::string& s);
std::string dtypeName(at::ScalarType t);
at::Device parseDevice(const std::string& s);
std::string deviceName(const at::Device& d);

// The JS TorchError constructor registered by the TypeScript side at load time.
Napi::Error torchError(Napi::Env env, const std::string& op, const std::string& message);

// Runs fn and converts every C++ exception into a JS TorchError naming the operation.
template <typename F>
Napi::Value guard(Napi::Env env, const char* op, F&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw torchError(env, op, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw torchError(env, op, e.what());
  } catch (...) {
    throw torchError(env, op, "unknown C++ exception");
  }
}

// Typed access to JS arguments starting at `offset`, with errors that name the argument position.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, size_t offset) : info_(info), offset_(offset) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length() - offset_; }
  Napi::Value raw(size_t i) const { return info_[offset_ + i]; }
  bool has(size_t i) const { return offset_ + i < info_.Length() && !raw(i).IsUndefined() && !raw(i).IsNull(); }

  at::Tensor& t(size_t i) const { return unwrap(raw(i), label(i).c_str()); }
  Opt<at::Tensor> optT(size_t i) const { return has(i) ? Opt<at::Tensor>(t(i)) : kNone; }
  std::vector<at::Tensor> tensors(size_t i) const;
  double f(size_t i) const;
  int64_t i64(size_t i) const;
  Opt<int64_t> optI64(size_t i) const { return has(i) ? Opt<int64_t>(i64(i)) : kNone; }
  bool b(size_t i) const;
  std::string str(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  at::Scalar scalar(size_t i) const;
  at::ScalarType dtype(size_t i) const { return parseDtype(str(i)); }
  at::TensorOptions options(size_t dtypeArg, size_t deviceArg) const;

 private:
  std::string label(size_t i) const { return "argument " + std::to_string(i); }
  const Napi::CallbackInfo& info_;
  size_t offset_;
};

// Return-value helpers for the op table.
inline Napi::Value out(Napi::Env env, at::Tensor t) { return wrap(env, std::move(t)); }
inline Napi::Value out(Napi::Env env, const std::vector<at::Tensor>& ts) { return wrapList(env, ts); }
inline Napi::Value out(Napi::Env env, const std::tuple<at::Tensor, at::Tensor>& ts) {
  return wrapList(env, {std::get<0>(ts), std::get<1>(ts)});
}

// Registration of the module parts (one per source file).
void initCore(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initTraining(Napi::Env env, Napi::Object exports);

// Wraps a plain function so it runs inside guard() under its exported name.
using PlainFn = Napi::Value (*)(const Napi::CallbackInfo&);
void exportFn(Napi::Env env, Napi::Object exports, const char* name, PlainFn fn);

}  // namespace ragtune
