// Tensor handles, argument decoding, data transfer, autograd, RNG, threads, devices, autocast.
#include <ATen/autocast_mode.h>

#include <cstring>
#include <thread>

#include "common.h"

// CUDA allocator statistics. libtorch ≥ 2.9 exposes them device-generically in libc10 (no CUDA toolkit headers
// needed); older CUDA builds need c10/cuda's header, which includes the toolkit's cuda_runtime_api.h. Where
// neither is available (or RAGTUNE_NO_CUDA_STATS is defined), cudaMemory() reports zeros.
#if defined(RAGTUNE_CUDA) && !defined(RAGTUNE_NO_CUDA_STATS)
#if RAGTUNE_TORCH_AT_LEAST(2, 9) && __has_include(<c10/core/CachingDeviceAllocator.h>)
#include <c10/core/CachingDeviceAllocator.h>
#define RAGTUNE_CUDA_STATS 2
#elif __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define RAGTUNE_CUDA_STATS 1
#endif
#endif

namespace ragtune {

std::atomic<int64_t> gLiveTensors{0};

// Type tag: an External that is not one of our handles is refused instead of being reinterpreted.
static const napi_type_tag kHandleTag = {0x7261677475'6e6520ULL, 0x74656e736f720001ULL};
static Napi::FunctionReference* gTorchErrorCtor = nullptr;

// ---------------------------------------------------------------------------------------------------------
// Handles

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  auto* h = new Handle{std::move(t), true};
  gLiveTensors.fetch_add(1, std::memory_order_relaxed);
  auto ext = Napi::External<Handle>::New(env, h, [](Napi::Env, Handle* h) {
    if (h->alive) gLiveTensors.fetch_sub(1, std::memory_order_relaxed);
    delete h;
  });
  ext.TypeTag(&kHandleTag);
  return ext;
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) arr.Set(static_cast<uint32_t>(i), wrap(env, ts[i]));
  return arr;
}

bool isTensor(const Napi::Value& v) {
  return v.IsExternal() && v.As<Napi::External<Handle>>().CheckTypeTag(&kHandleTag);
}

at::Tensor& unwrap(const Napi::Value& v, const char* what) {
  if (!isTensor(v)) throw ArgError(std::string(what) + ": expected a Tensor");
  Handle* h = v.As<Napi::External<Handle>>().Data();
  if (!h->alive) throw ArgError(std::string(what) + ": the tensor was disposed (use after dispose())");
  return h->tensor;
}

// ---------------------------------------------------------------------------------------------------------
// Names

at::ScalarType parseDtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "int16") return at::kShort;
  if (s == "int8") return at::kChar;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw ArgError("unknown dtype '" + s +
                 "' (known: float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool)");
}

std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return std::string(c10::toString(t));
  }
}

at::Device parseDevice(const std::string& s) {
  at::Device d(s);  // throws c10::Error with libtorch's message for malformed strings
  if (d.is_cuda()) {
    if (!torch::cuda::is_available())
      throw ArgError("device '" + s + "' requested but CUDA is not available (libtorch " TORCH_VERSION
#ifndef RAGTUNE_CUDA
                     ", built without CUDA"
#endif
                     ")");
    if (d.has_index() && d.index() >= static_cast<int64_t>(torch::cuda::device_count()))
      throw ArgError("device '" + s + "' does not exist: " + std::to_string(torch::cuda::device_count()) +
                     " CUDA device(s)");
  } else if (!d.is_cpu()) {
    throw ArgError("unsupported device '" + s + "' (use cpu or cuda[:n])");
  }
  return d;
}

std::string deviceName(const at::Device& d) {
  if (d.is_cuda()) return "cuda:" + std::to_string(d.has_index() ? d.index() : 0);
  return d.str();
}

Napi::Error torchError(Napi::Env env, const std::string& op, const std::string& message) {
  if (gTorchErrorCtor == nullptr) return Napi::Error::New(env, op + ": " + message);
  Napi::Object err = gTorchErrorCtor->New({Napi::String::New(env, message), Napi::String::New(env, op)});
  return Napi::Error(env, err);
}

// ---------------------------------------------------------------------------------------------------------
// Argument decoding

std::vector<at::Tensor> Args::tensors(size_t i) const {
  if (!raw(i).IsArray()) throw ArgError(label(i) + ": expected an array of tensors");
  auto arr = raw(i).As<Napi::Array>();
  std::vector<at::Tensor> ts;
  ts.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    std::string what = label(i) + "[" + std::to_string(k) + "]";
    ts.push_back(unwrap(arr.Get(k), what.c_str()));
  }
  return ts;
}

double Args::f(size_t i) const {
  if (!raw(i).IsNumber()) throw ArgError(label(i) + ": expected a number");
  return raw(i).As<Napi::Number>().DoubleValue();
}

int64_t Args::i64(size_t i) const {
  if (raw(i).IsBigInt()) {
    bool lossless = true;
    return raw(i).As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!raw(i).IsNumber()) throw ArgError(label(i) + ": expected an integer");
  double d = raw(i).As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) throw ArgError(label(i) + ": expected an integer");
  return static_cast<int64_t>(d);
}

bool Args::b(size_t i) const {
  if (!raw(i).IsBoolean()) throw ArgError(label(i) + ": expected a boolean");
  return raw(i).As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) const {
  if (!raw(i).IsString()) throw ArgError(label(i) + ": expected a string");
  return raw(i).As<Napi::String>().Utf8Value();
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (raw(i).IsNumber()) return {i64(i)};
  if (!raw(i).IsArray()) throw ArgError(label(i) + ": expected an array of integers");
  auto arr = raw(i).As<Napi::Array>();
  std::vector<int64_t> v(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throw ArgError(label(i) + ": expected an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) throw ArgError(label(i) + ": expected integers");
    v[k] = static_cast<int64_t>(d);
  }
  return v;
}

// JS numbers that are integers become integer scalars so `intTensor.add(1)` stays an integer tensor;
// with floating tensors libtorch's type promotion keeps the tensor's dtype either way.
at::Scalar Args::scalar(size_t i) const {
  Napi::Value v = raw(i);
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) throw ArgError(label(i) + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

at::TensorOptions Args::options(size_t dtypeArg, size_t deviceArg) const {
  auto o = at::TensorOptions().dtype(has(dtypeArg) ? dtype(dtypeArg) : at::kFloat);
  if (has(deviceArg)) o = o.device(parseDevice(str(deviceArg)));
  return o;
}

void exportFn(Napi::Env env, Napi::Object exports, const char* name, PlainFn fn) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [name, fn](const Napi::CallbackInfo& info) -> Napi::Value {
                          return guard(info.Env(), name, [&] { return fn(info); });
                        },
                        name));
}

// ---------------------------------------------------------------------------------------------------------
// Exported functions

namespace {

Napi::Value setErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw ArgError("setErrorClass: expected a constructor");
  delete gTorchErrorCtor;
  gTorchErrorCtor = new Napi::FunctionReference(Napi::Persistent(info[0].As<Napi::Function>()));
  return info.Env().Undefined();
}

Napi::Value liveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gLiveTensors.load()));
}

Napi::Value dispose(const Napi::CallbackInfo& info) {
  if (!isTensor(info[0])) throw ArgError("dispose: expected a Tensor");
  Handle* h = info[0].As<Napi::External<Handle>>().Data();
  if (h->alive) {
    h->tensor = at::Tensor();
    h->alive = false;
    gLiveTensors.fetch_sub(1, std::memory_order_relaxed);
  }
  return info.Env().Undefined();
}

Napi::Value isAlive(const Napi::CallbackInfo& info) {
  if (!isTensor(info[0])) throw ArgError("isAlive: expected a Tensor");
  return Napi::Boolean::New(info.Env(), info[0].As<Napi::External<Handle>>().Data()->alive);
}

// fromBytes(bytes: ArrayBufferView | ArrayBuffer, dtype, shape, device?) — copies.
Napi::Value fromBytes(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  const uint8_t* data = nullptr;
  size_t length = 0;
  Napi::Value v = a.raw(0);
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    length = ta.ByteLength();
  } else if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    data = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    length = dv.ByteLength();
  } else if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    length = ab.ByteLength();
  } else {
    throw ArgError("expected a TypedArray, Buffer, DataView or ArrayBuffer");
  }
  at::ScalarType dt = a.dtype(1);
  std::vector<int64_t> shape = a.ints(2);
  auto t = at::empty(shape, at::TensorOptions().dtype(dt));
  size_t expected = static_cast<size_t>(t.numel()) * t.element_size();
  if (expected != length) {
    throw ArgError("shape " + c10::str(at::IntArrayRef(shape)) + " of " + dtypeName(dt) + " needs " +
                   std::to_string(expected) + " bytes, got " + std::to_string(length));
  }
  if (length > 0) std::memcpy(t.data_ptr(), data, length);
  if (a.has(3)) t = t.to(parseDevice(a.str(3)));
  return wrap(info.Env(), t);
}

// toBytes(t) → Buffer with the tensor's elements in row-major order (moved to CPU, made contiguous).
Napi::Value toBytes(const Napi::CallbackInfo& info) {
  at::Tensor t = unwrap(info[0]).detach().to(at::kCPU).contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), static_cast<const uint8_t*>(t.data_ptr()), n);
}

Napi::Value item(const Napi::CallbackInfo& info) {
  at::Tensor& t = unwrap(info[0]);
  if (t.numel() != 1)
    throw ArgError("tensor of shape " + c10::str(t.sizes()) + " has " + std::to_string(t.numel()) +
                   " elements, expected 1");
  if (t.scalar_type() == at::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
  return Napi::Number::New(info.Env(), t.item<double>());
}

Napi::Value meta(const Napi::CallbackInfo& info) {
  at::Tensor& t = unwrap(info[0]);
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  o.Set("shape", shape);
  o.Set("dtype", dtypeName(t.scalar_type()));
  o.Set("device", deviceName(t.device()));
  return o;
}

Napi::Value shape(const Napi::CallbackInfo& info) {
  at::Tensor& t = unwrap(info[0]);
  auto env = info.Env();
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  return shape;
}

Napi::Value dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(unwrap(info[0]).scalar_type()));
}
Napi::Value device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), deviceName(unwrap(info[0]).device()));
}
Napi::Value requiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).requires_grad());
}
Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  a.t(0).set_requires_grad(a.b(1));
  return info.Env().Undefined();
}
Napi::Value isLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).is_leaf());
}
Napi::Value isContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).is_contiguous());
}
Napi::Value sameStorage(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).is_alias_of(unwrap(info[1])));
}

Napi::Value grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = unwrap(info[0]).grad();
  if (!g.defined()) return info.Env().Null();
  return wrap(info.Env(), g);
}

Napi::Value hasGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).grad().defined());
}

// setGrad(t, g | null): replaces (or clears) the accumulated gradient.
Napi::Value setGrad(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  at::Tensor& t = a.t(0);
  if (a.has(1)) {
    const at::Tensor& g = a.t(1);
    // Checked now: a mismatched gradient would otherwise fail much later, in backward() or the optimizer.
    if (g.sizes() != t.sizes() || g.scalar_type() != t.scalar_type() || g.device() != t.device())
      throw ArgError("gradient of shape " + c10::str(g.sizes()) + " " + dtypeName(g.scalar_type()) + " on " +
                     deviceName(g.device()) + " does not match the tensor's " + c10::str(t.sizes()) + " " +
                     dtypeName(t.scalar_type()) + " on " + deviceName(t.device()));
    t.mutable_grad() = g;
  } else {
    t.mutable_grad() = at::Tensor();
  }
  return info.Env().Undefined();
}

// backward(t, gradient?, retainGraph?)
Napi::Value backward(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  at::Tensor gradient = a.has(1) ? a.t(1) : at::Tensor();
  Opt<bool> retain = a.has(2) ? Opt<bool>(a.b(2)) : kNone;
  a.t(0).backward(gradient, retain, false);
  return info.Env().Undefined();
}

// backwardMany(tensors[], gradients[], retainGraph?) — one backward pass through several roots.
Napi::Value backwardMany(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  auto roots = a.tensors(0);
  auto grads = a.has(1) ? a.tensors(1) : std::vector<at::Tensor>{};
  Opt<bool> retain = a.has(2) ? Opt<bool>(a.b(2)) : kNone;
  torch::autograd::backward(roots, grads, retain, false);
  return info.Env().Undefined();
}

Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(a.b(0));
  return Napi::Boolean::New(info.Env(), prev);
}
Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(Args(info, 0).i64(0)));
  return info.Env().Undefined();
}

at::Generator defaultGenerator(const std::string& dev) {
  at::Device d = parseDevice(dev);
  if (d.is_cuda() && !d.has_index()) d = at::Device(at::kCUDA, 0);
  return at::globalContext().defaultGenerator(d);
}

Napi::Value getRngState(const Napi::CallbackInfo& info) {
  at::Generator gen = defaultGenerator(Args(info, 0).has(0) ? Args(info, 0).str(0) : "cpu");
  std::lock_guard<std::mutex> lock(gen.mutex());
  return wrap(info.Env(), gen.get_state());
}

Napi::Value setRngState(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  at::Generator gen = defaultGenerator(a.str(0));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(a.t(1));
  return info.Env().Undefined();
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = Args(info, 0).i64(0);
  if (n < 1) throw ArgError("setNumThreads: expected at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
#ifdef RAGTUNE_CUDA
  o.Set("cudaBuild", true);
#else
  o.Set("cudaBuild", false);
#endif
  o.Set("cudaAvailable", torch::cuda::is_available());
  o.Set("cudaDeviceCount", static_cast<double>(static_cast<int>(torch::cuda::device_count())));
  o.Set("cudaStats", static_cast<bool>(
#ifdef RAGTUNE_CUDA_STATS
                         true
#else
                         false
#endif
                         ));
  o.Set("hardwareConcurrency", static_cast<double>(std::thread::hardware_concurrency()));
  o.Set("fusedAttention", RAGTUNE_TORCH_AT_LEAST(2, 0));
  o.Set("parallelInfo", at::get_parallel_info());
  return o;
}

Napi::Value cudaSynchronize(const Napi::CallbackInfo& info) {
#if defined(RAGTUNE_CUDA) && RAGTUNE_TORCH_AT_LEAST(2, 0)
  if (torch::cuda::is_available()) torch::cuda::synchronize();
#endif
  return info.Env().Undefined();
}

// cudaMemory(deviceIndex) → {allocated, peakAllocated, reserved, peakReserved} in bytes (zeros without CUDA).
Napi::Value cudaMemory(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  double allocated = 0, peak = 0, reserved = 0, peakReserved = 0;
#ifdef RAGTUNE_CUDA_STATS
  if (torch::cuda::is_available()) {
    auto dev = static_cast<c10::DeviceIndex>(Args(info, 0).has(0) ? Args(info, 0).i64(0) : 0);
#if RAGTUNE_CUDA_STATS == 2
    auto stats = c10::getDeviceAllocator(at::kCUDA)->getDeviceStats(dev);
#else
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
#endif
    constexpr size_t kAgg = 0;  // StatType::AGGREGATE
    allocated = static_cast<double>(stats.allocated_bytes[kAgg].current);
    peak = static_cast<double>(stats.allocated_bytes[kAgg].peak);
    reserved = static_cast<double>(stats.reserved_bytes[kAgg].current);
    peakReserved = static_cast<double>(stats.reserved_bytes[kAgg].peak);
  }
#endif
  o.Set("allocated", allocated);
  o.Set("peakAllocated", peak);
  o.Set("reserved", reserved);
  o.Set("peakReserved", peakReserved);
  return o;
}

Napi::Value cudaResetPeak(const Napi::CallbackInfo& info) {
#ifdef RAGTUNE_CUDA_STATS
  if (torch::cuda::is_available()) {
    auto dev = static_cast<c10::DeviceIndex>(Args(info, 0).has(0) ? Args(info, 0).i64(0) : 0);
#if RAGTUNE_CUDA_STATS == 2
    c10::getDeviceAllocator(at::kCUDA)->resetPeakStats(dev);
#else
    c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
#endif
  }
#endif
  return info.Env().Undefined();
}

Napi::Value cudaEmptyCache(const Napi::CallbackInfo& info) {
#ifdef RAGTUNE_CUDA_STATS
  if (torch::cuda::is_available()) {
#if RAGTUNE_CUDA_STATS == 2
    c10::getDeviceAllocator(at::kCUDA)->emptyCache();
#else
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  }
#endif
  return info.Env().Undefined();
}

// setAutocast(deviceType "cuda"|"cpu", enabled, dtype) → {enabled, dtype} as they were before, so a nested region
// restores its outer one exactly. The dtype is set before enabling (1.13 refuses float16 on the CPU, and must not
// be left enabled then). Leaving the outermost region clears autocast's cast cache, as torch.autocast.__exit__.
Napi::Value setAutocast(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  std::string dev = a.str(0);
  bool enabled = a.b(1);
  at::ScalarType dt = a.has(2) ? a.dtype(2) : at::kBFloat16;
  if (dev != "cuda" && dev != "cpu") throw ArgError("device type must be 'cuda' or 'cpu'");
  at::DeviceType type = dev == "cuda" ? at::kCUDA : at::kCPU;
  bool prev;
  at::ScalarType prevDtype;
#if RAGTUNE_TORCH_AT_LEAST(2, 4)
  prev = at::autocast::is_autocast_enabled(type);
  prevDtype = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_dtype(type, dt);
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == at::kCUDA) {
    prev = at::autocast::is_enabled();
    prevDtype = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(dt);
    at::autocast::set_enabled(enabled);
  } else {
    prev = at::autocast::is_cpu_enabled();
    prevDtype = at::autocast::get_autocast_cpu_dtype();
    if (enabled && dt != at::kBFloat16)
      throw ArgError("CPU autocast on libtorch " TORCH_VERSION " supports bfloat16 only, got " + dtypeName(dt));
    at::autocast::set_autocast_cpu_dtype(dt);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
  if (enabled && !prev) {
    at::autocast::increment_nesting();
  } else if (!enabled && prev) {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  auto o = Napi::Object::New(info.Env());
  o.Set("enabled", prev);
  o.Set("dtype", dtypeName(prevDtype));
  return o;
}

// setTf32(enabled): TF32 tensor cores for float32 matmuls and convolutions on CUDA (torch.backends.*.allow_tf32).
Napi::Value setTf32(const Napi::CallbackInfo& info) {
  bool enabled = Args(info, 0).b(0);
  bool prev = at::globalContext().allowTF32CuBLAS();
  at::globalContext().setAllowTF32CuBLAS(enabled);
  at::globalContext().setAllowTF32CuDNN(enabled);
  at::globalContext().setFloat32MatmulPrecision(enabled ? "high" : "highest");
  return Napi::Boolean::New(info.Env(), prev);
}

}  // namespace

void initCore(Napi::Env env, Napi::Object exports) {
  exportFn(env, exports, "setErrorClass", setErrorClass);
  exportFn(env, exports, "liveTensors", liveTensors);
  exportFn(env, exports, "dispose", dispose);
  exportFn(env, exports, "isAlive", isAlive);
  exportFn(env, exports, "fromBytes", fromBytes);
  exportFn(env, exports, "toBytes", toBytes);
  exportFn(env, exports, "item", item);
  exportFn(env, exports, "meta", meta);
  exportFn(env, exports, "shape", shape);
  exportFn(env, exports, "dtype", dtype);
  exportFn(env, exports, "device", device);
  exportFn(env, exports, "requiresGrad", requiresGrad);
  exportFn(env, exports, "setRequiresGrad", setRequiresGrad);
  exportFn(env, exports, "isLeaf", isLeaf);
  exportFn(env, exports, "isContiguous", isContiguous);
  exportFn(env, exports, "sameStorage", sameStorage);
  exportFn(env, exports, "grad", grad);
  exportFn(env, exports, "setGrad", setGrad);
  exportFn(env, exports, "hasGrad", hasGrad);
  exportFn(env, exports, "backward", backward);
  exportFn(env, exports, "backwardMany", backwardMany);
  exportFn(env, exports, "setGradEnabled", setGradEnabled);
  exportFn(env, exports, "isGradEnabled", isGradEnabled);
  exportFn(env, exports, "manualSeed", manualSeed);
  exportFn(env, exports, "getRngState", getRngState);
  exportFn(env, exports, "setRngState", setRngState);
  exportFn(env, exports, "setNumThreads", setNumThreads);
  exportFn(env, exports, "getNumThreads", getNumThreads);
  exportFn(env, exports, "buildInfo", buildInfo);
  exportFn(env, exports, "cudaSynchronize", cudaSynchronize);
  exportFn(env, exports, "cudaMemory", cudaMemory);
  exportFn(env, exports, "cudaResetPeak", cudaResetPeak);
  exportFn(env, exports, "cudaEmptyCache", cudaEmptyCache);
  exportFn(env, exports, "setAutocast", setAutocast);
  exportFn(env, exports, "setTf32", setTf32);
}

}  // namespace ragtune
