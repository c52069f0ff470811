// The op table: every tensor operation ragtune exposes, one declarative line each.
//
// JS calls `op(index, ...args)`; the index comes from `opNames()` (looked up once at load time by name, so the
// TypeScript side never depends on the table's order). Argument signature letters, shown in errors:
//   t tensor, o optional tensor, T tensor list, s scalar (number|boolean), f float, i int, I int list,
//   b bool, S dtype name, D device string, r string.
#include "common.h"

namespace ragtune {
namespace {

using OpFn = Napi::Value (*)(const Args&);
struct OpDef {
  const char* name;
  const char* sig;
  OpFn fn;
};

#define OP(NAME, SIG, EXPR) \
  OpDef { NAME, SIG, [](const Args& a) -> Napi::Value { return out(a.env(), EXPR); } }
#define OP_INPLACE(NAME, SIG, STMT) \
  OpDef {                           \
    NAME, SIG, [](const Args& a) -> Napi::Value { STMT; return a.env().Undefined(); } }

int64_t reductionCode(const std::string& r) {
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw ArgError("reduction must be 'none', 'mean' or 'sum', got '" + r + "'");
}

// F.normalize: x / max(||x||_p, eps) along dim.
at::Tensor normalize(const at::Tensor& x, double p, int64_t dim, double eps) {
  return x / at::norm(x, p, {dim}, true).clamp_min(eps).expand_as(x);
}

// Scaled dot-product attention. libtorch 2.x picks a fused kernel (flash / memory-efficient on CUDA); 1.13 has
// none, so the fallback computes the same math: softmax(q kᵀ / √d + mask) v. A boolean mask marks positions
// that take part (True = attend), a floating mask is added to the scores.
at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Opt<at::Tensor>& mask,
                double dropoutP, bool causal) {
#if RAGTUNE_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, dropoutP, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(scale);  // (..., Lq, Lk)
  if (causal) {
    auto keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value()) {
    const at::Tensor& m = *mask;
    scores = m.scalar_type() == at::kBool
                 ? scores.masked_fill(m.logical_not(), -std::numeric_limits<double>::infinity())
                 : scores + m;
  }
  at::Tensor attn = at::softmax(scores, -1);
  if (dropoutP > 0) attn = at::dropout(attn, dropoutP, true);
  return at::matmul(attn, v);
#endif
}

const OpDef kOps[] = {
    // --- elementwise arithmetic (broadcasting) ----------------------------------------------------------
    OP("add", "t,t,s", at::add(a.t(0), a.t(1), a.scalar(2))),
    OP("add_scalar", "t,s", at::add(a.t(0), a.scalar(1))),
    OP("sub", "t,t,s", at::sub(a.t(0), a.t(1), a.scalar(2))),
    OP("sub_scalar", "t,s", at::sub(a.t(0), a.scalar(1))),
    OP("rsub_scalar", "t,s", at::rsub(a.t(0), a.scalar(1))),
    OP("mul", "t,t", at::mul(a.t(0), a.t(1))),
    OP("mul_scalar", "t,s", at::mul(a.t(0), a.scalar(1))),
    OP("div", "t,t", at::div(a.t(0), a.t(1))),
    OP("div_scalar", "t,s", at::div(a.t(0), a.scalar(1))),
    OP("pow", "t,t", at::pow(a.t(0), a.t(1))),
    OP("pow_scalar", "t,s", at::pow(a.t(0), a.scalar(1))),
    OP("maximum", "t,t", at::maximum(a.t(0), a.t(1))),
    OP("minimum", "t,t", at::minimum(a.t(0), a.t(1))),
    OP("clamp", "t,s,s", at::clamp(a.t(0), a.has(1) ? Opt<at::Scalar>(a.scalar(1)) : kNone,
                                    a.has(2) ? Opt<at::Scalar>(a.scalar(2)) : kNone)),
    OP("neg", "t", at::neg(a.t(0))),
    OP("abs", "t", at::abs(a.t(0))),
    OP("exp", "t", at::exp(a.t(0))),
    OP("log", "t", at::log(a.t(0))),
    OP("log1p", "t", at::log1p(a.t(0))),
    OP("sqrt", "t", at::sqrt(a.t(0))),
    OP("rsqrt", "t", at::rsqrt(a.t(0))),
    OP("reciprocal", "t", at::reciprocal(a.t(0))),
    OP("square", "t", at::square(a.t(0))),
    OP("sin", "t", at::sin(a.t(0))),
    OP("cos", "t", at::cos(a.t(0))),
    OP("tanh", "t", at::tanh(a.t(0))),
    OP("erf", "t", at::erf(a.t(0))),
    OP("sigmoid", "t", at::sigmoid(a.t(0))),
    OP("relu", "t", at::relu(a.t(0))),
    OP("gelu", "t,r", at::gelu(a.t(0), a.has(1) ? a.str(1) : "none")),
    OP("sign", "t", at::sign(a.t(0))),
    // --- comparison and selection -----------------------------------------------------------------------
    OP("eq", "t,t", at::eq(a.t(0), a.t(1))),
    OP("eq_scalar", "t,s", at::eq(a.t(0), a.scalar(1))),
    OP("ne", "t,t", at::ne(a.t(0), a.t(1))),
    OP("ne_scalar", "t,s", at::ne(a.t(0), a.scalar(1))),
    OP("lt", "t,t", at::lt(a.t(0), a.t(1))),
    OP("lt_scalar", "t,s", at::lt(a.t(0), a.scalar(1))),
    OP("le", "t,t", at::le(a.t(0), a.t(1))),
    OP("le_scalar", "t,s", at::le(a.t(0), a.scalar(1))),
    OP("gt", "t,t", at::gt(a.t(0), a.t(1))),
    OP("gt_scalar", "t,s", at::gt(a.t(0), a.scalar(1))),
    OP("ge", "t,t", at::ge(a.t(0), a.t(1))),
    OP("ge_scalar", "t,s", at::ge(a.t(0), a.scalar(1))),
    OP("logical_and", "t,t", at::logical_and(a.t(0), a.t(1))),
    OP("logical_or", "t,t", at::logical_or(a.t(0), a.t(1))),
    OP("logical_not", "t", at::logical_not(a.t(0))),
    OP("where", "t,t,t", at::where(a.t(0), a.t(1), a.t(2))),
    OP("masked_fill", "t,t,s", at::masked_fill(a.t(0), a.t(1), a.scalar(2))),
    OP("allclose", "t,t,f,f", at::full({}, at::allclose(a.t(0), a.t(1), a.f(2), a.f(3)), at::kBool)),
    // --- linear algebra -----------------------------------------------------------------------------------
    OP("matmul", "t,t", at::matmul(a.t(0), a.t(1))),
    OP("mm", "t,t", at::mm(a.t(0), a.t(1))),
    OP("bmm", "t,t", at::bmm(a.t(0), a.t(1))),
    OP("linear", "t,t,o", at::linear(a.t(0), a.t(1), a.optT(2))),
    OP("addmm", "t,t,t,s,s", at::addmm(a.t(0), a.t(1), a.t(2), a.scalar(3), a.scalar(4))),
    // --- neural-network functions -------------------------------------------------------------------------
    OP("softmax", "t,i", at::softmax(a.t(0), a.i64(1))),
    OP("log_softmax", "t,i", at::log_softmax(a.t(0), a.i64(1))),
    OP("layer_norm", "t,I,o,o,f", at::layer_norm(a.t(0), a.ints(1), a.optT(2), a.optT(3), a.f(4))),
    OP("dropout", "t,f,b", at::dropout(a.t(0), a.f(1), a.b(2))),
    OP("embedding", "t,t,i", at::embedding(a.t(0), a.t(1), a.has(2) ? a.i64(2) : -1)),
    OP("normalize", "t,f,i,f", normalize(a.t(0), a.f(1), a.i64(2), a.f(3))),
    OP("cross_entropy", "t,t,r,f,i",
       at::cross_entropy_loss(a.t(0), a.t(1), {}, reductionCode(a.str(2)), a.has(4) ? a.i64(4) : -100,
                              a.has(3) ? a.f(3) : 0.0)),
    OP("sdpa", "t,t,t,o,f,b", sdpa(a.t(0), a.t(1), a.t(2), a.optT(3), a.f(4), a.b(5))),
    // --- shape and indexing -------------------------------------------------------------------------------
    OP("reshape", "t,I", at::reshape(a.t(0), a.ints(1))),
    OP("view", "t,I", a.t(0).view(a.ints(1))),
    OP("permute", "t,I", a.t(0).permute(a.ints(1))),
    OP("transpose", "t,i,i", at::transpose(a.t(0), a.i64(1), a.i64(2))),
    OP("unsqueeze", "t,i", at::unsqueeze(a.t(0), a.i64(1))),
    OP("squeeze", "t", at::squeeze(a.t(0))),
    OP("squeeze_dim", "t,i", at::squeeze(a.t(0), a.i64(1))),
    OP("expand", "t,I", a.t(0).expand(a.ints(1))),
    OP("flatten", "t,i,i", at::flatten(a.t(0), a.i64(1), a.i64(2))),
    OP("repeat", "t,I", a.t(0).repeat(a.ints(1))),
    OP("contiguous", "t", a.t(0).contiguous()),
    OP("clone", "t", a.t(0).clone()),
    OP("detach", "t", a.t(0).detach()),
    OP("alias", "t", a.t(0)),  // a second handle on the same tensor (shallow clone)
    OP("narrow", "t,i,i,i", at::narrow(a.t(0), a.i64(1), a.i64(2), a.i64(3))),
    OP("slice", "t,i,i,i,i", a.t(0).slice(a.i64(1), a.i64(2), a.i64(3), a.i64(4))),
    OP("select", "t,i,i", a.t(0).select(a.i64(1), a.i64(2))),
    OP("index_select", "t,i,t", at::index_select(a.t(0), a.i64(1), a.t(2))),
    OP("gather", "t,i,t", at::gather(a.t(0), a.i64(1), a.t(2))),
    // Segment sums and maxima of packed sequences (src/models/packed.ts): out[index[i]] += / max= src[i].
    OP("index_add", "t,i,t,t", at::index_add(a.t(0), a.i64(1), a.t(2), a.t(3))),
    OP("scatter_reduce", "t,i,t,t,r,b", at::scatter_reduce(a.t(0), a.i64(1), a.t(2), a.t(3), a.str(4), a.b(5))),
    OP("cat", "T,i", at::cat(a.tensors(0), a.i64(1))),
    OP("stack", "T,i", at::stack(a.tensors(0), a.i64(1))),
    OP("split", "t,i,i", at::split(a.t(0), a.i64(1), a.i64(2))),
    OP("tril", "t,i", at::tril(a.t(0), a.i64(1))),
    OP("flip", "t,I", at::flip(a.t(0), a.ints(1))),
    // --- conversion ----------------------------------------------------------------------------------------
    OP("to_dtype", "t,S", a.t(0).to(a.dtype(1))),
    OP("to_device", "t,D", a.t(0).to(parseDevice(a.str(1)))),
    // --- reductions ----------------------------------------------------------------------------------------
    OP("sum_all", "t", a.t(0).sum()),
    OP("sum", "t,I,b", at::sum(a.t(0), a.ints(1), a.b(2))),
    OP("mean_all", "t", a.t(0).mean()),
    OP("mean", "t,I,b", at::mean(a.t(0), a.ints(1), a.b(2))),
    OP("max_all", "t", a.t(0).max()),
    OP("max_dim", "t,i,b", at::max(a.t(0), a.i64(1), a.b(2))),
    OP("min_all", "t", a.t(0).min()),
    OP("min_dim", "t,i,b", at::min(a.t(0), a.i64(1), a.b(2))),
    OP("argmax", "t,i,b", at::argmax(a.t(0), a.i64(1), a.b(2))),
    OP("argmin", "t,i,b", at::argmin(a.t(0), a.i64(1), a.b(2))),
    OP("norm", "t,s,I,b", at::norm(a.t(0), a.scalar(1), a.ints(2), a.b(3))),
    OP("norm_all", "t,s", at::norm(a.t(0), a.scalar(1))),
    OP("logsumexp", "t,I,b", at::logsumexp(a.t(0), a.ints(1), a.b(2))),
    OP("cumsum", "t,i", at::cumsum(a.t(0), a.i64(1))),
    OP("topk", "t,i,i,b,b", at::topk(a.t(0), a.i64(1), a.i64(2), a.b(3), a.b(4))),
    OP("sort", "t,i,b,b", at::sort(a.t(0), a.b(3), a.i64(1), a.b(2))),  // (t, dim, descending, stable)
    // --- creation --------------------------------------------------------------------------------------------
    OP("zeros", "I,S,D", at::zeros(a.ints(0), a.options(1, 2))),
    OP("ones", "I,S,D", at::ones(a.ints(0), a.options(1, 2))),
    OP("empty", "I,S,D", at::empty(a.ints(0), a.options(1, 2))),
    OP("full", "I,s,S,D", at::full(a.ints(0), a.scalar(1), a.options(2, 3))),
    OP("arange", "s,s,s,S,D", at::arange(a.scalar(0), a.scalar(1), a.scalar(2), a.options(3, 4))),
    OP("rand", "I,S,D", at::rand(a.ints(0), a.options(1, 2))),
    OP("randn", "I,S,D", at::randn(a.ints(0), a.options(1, 2))),
    OP("randint", "i,i,I,S,D", at::randint(a.i64(0), a.i64(1), a.ints(2), a.options(3, 4))),
    OP("randperm", "i,S,D", at::randperm(a.i64(0), a.options(1, 2))),
    OP("zeros_like", "t", at::zeros_like(a.t(0))),
    OP("ones_like", "t", at::ones_like(a.t(0))),
    OP("eye", "i,S,D", at::eye(a.i64(0), a.options(1, 2))),
    // --- in place (return nothing; the TypeScript method returns `this`) --------------------------------
    OP_INPLACE("add_", "t,t,s", a.t(0).add_(a.t(1), a.scalar(2))),
    OP_INPLACE("mul_scalar_", "t,s", a.t(0).mul_(a.scalar(1))),
    OP_INPLACE("zero_", "t", a.t(0).zero_()),
    OP_INPLACE("fill_", "t,s", a.t(0).fill_(a.scalar(1))),
    OP_INPLACE("copy_", "t,t", a.t(0).copy_(a.t(1))),
    OP_INPLACE("uniform_", "t,f,f", a.t(0).uniform_(a.f(1), a.f(2))),
    OP_INPLACE("normal_", "t,f,f", a.t(0).normal_(a.f(1), a.f(2))),
};

constexpr size_t kNumOps = sizeof(kOps) / sizeof(kOps[0]);

Napi::Value opNames(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto arr = Napi::Array::New(env, kNumOps);
  for (size_t i = 0; i < kNumOps; ++i) arr.Set(static_cast<uint32_t>(i), kOps[i].name);
  return arr;
}

// op(index, ...args): the single entry point of the table; errors name the op and its signature.
Napi::Value callOp(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsNumber()) throw torchError(env, "op", "expected an op index");
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= kNumOps) throw torchError(env, "op", "op index out of range: " + std::to_string(id));
  const OpDef& def = kOps[id];
  // The op's display name is only built when an error needs it: this is the hot path of every tensor op.
  const auto name = [&] { return std::string(def.name) + "(" + def.sig + ")"; };
  try {
    return def.fn(Args(info, 1));
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw torchError(env, name(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw torchError(env, name(), e.what());
  }
}

}  // namespace

void initOps(Napi::Env env, Napi::Object exports) {
  exports.Set("opNames", Napi::Function::New(env, opNames, "opNames"));
  exports.Set("op", Napi::Function::New(env, callOp, "op"));
}

}  // namespace ragtune
