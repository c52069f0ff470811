// Optimizer kernels over parameter lists: AdamW and gradient-norm clipping, run in native code so a step over
// the ~200 tensors of a BERT costs one call from JS.
#include "common.h"

namespace ragtune {
namespace {

// adamwStep(params[], expAvgs[], expAvgSqs[], {lr, beta1, beta2, eps, weightDecay, step, maximize}) — one
// AdamW step (decoupled weight decay, bias correction). `step` is the 1-based step count after this update.
// Parameters without a gradient are skipped. Mirrors torch/optim/adamw.py (`_single_tensor_adamw` of
// PyTorch 2.x); on CUDA with libtorch ≥ 2.0 it calls the fused kernel that `AdamW(fused=True)` uses.
Napi::Value adamwStep(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  auto params = a.tensors(0);
  auto expAvgs = a.tensors(1);
  auto expAvgSqs = a.tensors(2);
  if (!a.raw(3).IsObject()) throw ArgError("adamwStep: expected an options object");
  auto o = a.raw(3).As<Napi::Object>();
  auto num = [&](const char* k) {
    Napi::Value v = o.Get(k);
    if (!v.IsNumber()) throw ArgError(std::string("adamwStep: option '") + k + "' must be a number");
    return v.As<Napi::Number>().DoubleValue();
  };
  const double lr = num("lr"), beta1 = num("beta1"), beta2 = num("beta2"), eps = num("eps"),
               weightDecay = num("weightDecay"), step = num("step");
  const bool maximize = o.Get("maximize").IsBoolean() && o.Get("maximize").As<Napi::Boolean>().Value();
  if (params.size() != expAvgs.size() || params.size() != expAvgSqs.size())
    throw ArgError("adamwStep: params, expAvgs and expAvgSqs must have the same length");
  if (step < 1) throw ArgError("adamwStep: step must be ≥ 1");

  at::NoGradGuard noGrad;
  std::vector<at::Tensor> p, g, m, v;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    p.push_back(params[i]);
    g.push_back(maximize ? grad.neg() : grad);
    m.push_back(expAvgs[i]);
    v.push_back(expAvgSqs[i]);
  }
  if (p.empty()) return info.Env().Undefined();

#if RAGTUNE_TORCH_AT_LEAST(2, 0)
  if (p[0].is_cuda()) {
    // The fused kernel reads the step from a float tensor per parameter (torch/optim/adam.py `_fused_adam`
    // increments those before the call, so they already hold `step`).
    std::vector<at::Tensor> steps;
    steps.reserve(p.size());
    for (auto& t : p) steps.push_back(at::full({}, step, t.options().dtype(at::kFloat)));
    at::_fused_adamw_(p, g, m, v, {}, steps, lr, beta1, beta2, weightDecay, eps, false, false, kNone, kNone);
    return info.Env().Undefined();
  }
#endif
  const double biasCorrection1 = 1 - std::pow(beta1, step);
  const double biasCorrection2Sqrt = std::sqrt(1 - std::pow(beta2, step));
  const double stepSize = lr / biasCorrection1;
  // One update over (a slice of) a parameter. denom is the only temporary: one buffer, updated in place.
  auto update = [&](at::Tensor p, const at::Tensor& g, at::Tensor m, at::Tensor v) {
    if (weightDecay != 0) p.mul_(1 - lr * weightDecay);  // × 1 is a no-op pass over the weights: skipped
    m.lerp_(g, 1 - beta1);
    v.mul_(beta2).addcmul_(g, g, 1 - beta2);
    at::Tensor denom = v.sqrt();
    denom.div_(biasCorrection2Sqrt).add_(eps);
    p.addcdiv_(m, denom, -stepSize);
  };
  // Large contiguous parameters (the word embeddings) go in slices of 1M elements: the temporary then stays
  // far below glibc's mmap threshold and is reused from the heap instead of being mmap'd and faulted in
  // every step (native/malloc-policy.cc). Elementwise, so the result is the same bit for bit.
  constexpr int64_t kSlice = 1 << 20;
  for (size_t i = 0; i < p.size(); ++i) {
    const int64_t n = p[i].numel();
    bool sliceable = n > kSlice && p[i].is_cpu() && p[i].is_contiguous() && g[i].is_contiguous() &&
                     m[i].is_contiguous() && v[i].is_contiguous();
    if (!sliceable) {
      update(p[i], g[i], m[i], v[i]);
      continue;
    }
    at::Tensor pf = p[i].view(-1), gf = g[i].view(-1), mf = m[i].view(-1), vf = v[i].view(-1);
    for (int64_t s = 0; s < n; s += kSlice) {
      const int64_t len = std::min(kSlice, n - s);
      update(pf.narrow(0, s, len), gf.narrow(0, s, len), mf.narrow(0, s, len), vf.narrow(0, s, len));
    }
  }
  return info.Env().Undefined();
}

// clipGradNorm(params[], maxNorm, normType=2) → total norm before clipping (torch.nn.utils.clip_grad_norm_).
Napi::Value clipGradNorm(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  auto params = a.tensors(0);
  double maxNorm = a.f(1);
  double normType = a.has(2) ? a.f(2) : 2.0;
  double total = torch::nn::utils::clip_grad_norm_(params, maxNorm, normType);
  return Napi::Number::New(info.Env(), total);
}

// gradNorm(params[], normType=2) → total gradient norm without clipping (a diagnostic).
Napi::Value gradNorm(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  auto params = a.tensors(0);
  double normType = a.has(1) ? a.f(1) : 2.0;
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> norms;
  for (auto& p : params)
    // float64 gradients keep their precision; lower precisions are summed in float32.
    if (p.grad().defined())
      norms.push_back(at::norm(p.grad().scalar_type() == at::kDouble ? p.grad() : p.grad().to(at::kFloat), normType)
                          .to(at::kDouble));
  if (norms.empty()) return Napi::Number::New(info.Env(), 0.0);
  return Napi::Number::New(info.Env(), at::norm(at::stack(norms), normType).item<double>());
}

// zeroGrad(params[], setToNone=true): like Optimizer.zero_grad.
Napi::Value zeroGrad(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  auto params = a.tensors(0);
  bool setToNone = a.has(1) ? a.b(1) : true;
  for (auto& p : params) {
    at::Tensor& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (setToNone) {
      g = at::Tensor();
    } else {
      g = g.detach();
      g.zero_();
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void initTraining(Napi::Env env, Napi::Object exports) {
  exportFn(env, exports, "adamwStep", adamwStep);
  exportFn(env, exports, "clipGradNorm", clipGradNorm);
  exportFn(env, exports, "gradNorm", gradNorm);
  exportFn(env, exports, "zeroGrad", zeroGrad);
}

}  // namespace ragtune
