// Data-parallel collectives over libtorch's own distributed runtime (c10d): a TCPStore for the rendezvous and a
// ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL (CUDA tensors, only where the linked libtorch has it).
//
// Every collective is blocking on the calling (JS) thread: it is queued on the process group's worker threads
// and waited for with the group's timeout, so a dead peer or a stuck rank turns into a TorchError (through
// exportFn's guard) within the timeout instead of a hang. Before each collective the ranks all-gather a small
// signature (which collective, dtypes, shapes) so that ranks calling different collectives or passing
// different shapes fail with a message naming both ranks' shapes, instead of corrupting memory or timing out.
// After any failure the group is marked broken and refuses further calls (c10d gives no guarantee on the state
// of a group whose collective failed).
#include "common.h"

// c10d ships with most libtorch builds; ProcessGroupGloo.hpp also needs gloo's headers (Debian: libgloo-dev).
#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>)
#define RAGTUNE_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if defined(RAGTUNE_HAVE_C10D) && __has_include(<gloo/algorithm.h>)
#define RAGTUNE_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(RAGTUNE_HAVE_C10D) && defined(RAGTUNE_CUDA) && __has_include(<nccl.h>)
#define RAGTUNE_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace ragtune {
namespace {

#ifdef RAGTUNE_HAVE_C10D

// libtorch 2.0 split the process group into a dispatching ProcessGroup and per-backend Backend objects; the
// Gloo and NCCL classes derive from Backend there and from ProcessGroup in 1.13. Both expose the same virtual
// collectives.
#if RAGTUNE_TORCH_AT_LEAST(2, 0)
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

using Ms = std::chrono::milliseconds;

struct Group {
  int64_t id = 0;
  std::string backend;
  int rank = 0;
  int size = 1;
  Ms timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
  std::string broken;  // the first failure's message; non-empty = unusable
  std::mutex mutex;    // one collective at a time (the autograd engine may call from its own thread on CUDA)
};

static const napi_type_tag kGroupTag = {0x7261677475'6e6520ULL, 0x6332306467727001ULL};

// Groups by id, for the autograd node of allGatherWithGrad (its saved data can only hold IValues).
std::mutex gRegistryMutex;
std::unordered_map<int64_t, std::weak_ptr<Group>> gRegistry;
int64_t gNextId = 1;

std::shared_ptr<Group> lookup(int64_t id) {
  std::lock_guard<std::mutex> lock(gRegistryMutex);
  auto it = gRegistry.find(id);
  std::shared_ptr<Group> g = it == gRegistry.end() ? nullptr : it->second.lock();
  if (!g || !g->pg) throw std::runtime_error("the process group was destroyed");
  return g;
}

std::shared_ptr<Group> unwrapGroup(const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<Group>>>().CheckTypeTag(&kGroupTag))
    throw ArgError("argument 0: expected a process group");
  std::shared_ptr<Group> g = *v.As<Napi::External<std::shared_ptr<Group>>>().Data();
  if (!g->pg) throw ArgError("the process group was destroyed");
  return g;
}

std::string where(const Group& g) {
  return " (" + g.backend + ", rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + ")";
}

// Marks the group broken and throws a message that says what failed, on which rank, and the usual causes.
[[noreturn]] void fail(Group& g, const std::string& what, const std::string& message) {
  if (g.broken.empty()) g.broken = message;
  throw std::runtime_error(what + where(g) + " failed: " + message +
                           " — another rank probably exited, crashed or stopped calling collectives; timeout " +
                           std::to_string(g.timeout.count()) + " ms");
}

// Waits for queued works in order. The wait gets a grace second over the group's timeout, so the backend's
// own timeout error (which names the operation) normally arrives first.
void waitAll(Group& g, const char* what, std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  for (auto& w : works) {
    try {
      w->wait(g.timeout + Ms(1000));
    } catch (const c10::Error& e) {
      fail(g, what, e.what_without_backtrace());
    } catch (const std::exception& e) {
      fail(g, what, e.what());
    }
  }
}

template <typename F>
c10::intrusive_ptr<c10d::Work> launch(Group& g, const char* what, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    fail(g, what, e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(g, what, e.what());
  }
}

void checkUsable(const Group& g, const char* what) {
  if (!g.broken.empty())
    throw std::runtime_error(std::string(what) + where(g) +
                             ": the process group is unusable after an earlier failure: " + g.broken);
}

// --- signatures ------------------------------------------------------------------------------------------
// Every rank all-gathers kSig int64s: [kind, count, dtype hash, total numel, shape hash, d0, d1, d2], then
// compares. Cheap (one tiny collective) and it turns "rank 1 passed other shapes" into a clear error.
constexpr int64_t kSig = 8;
enum Kind : int64_t { kAllReduce = 1, kBroadcast = 2, kAllGather = 3, kGatherGrad = 4, kGatherGradBack = 5 };

const char* kindName(int64_t k) {
  switch (k) {
    case kAllReduce: return "allReduce";
    case kBroadcast: return "broadcast";
    case kAllGather: return "allGather";
    case kGatherGrad: return "allGatherWithGrad";
    case kGatherGradBack: return "allGatherWithGrad backward";
    default: return "?";
  }
}

std::string describe(const int64_t* s) {
  std::ostringstream o;
  o << kindName(s[0]) << " of " << s[1] << " tensor(s), " << s[3] << " elements";
  if (s[1] == 1) o << ", leading dims [" << s[5] << ", " << s[6] << ", " << s[7] << "]";
  return o.str();
}

std::vector<int64_t> signature(int64_t kind, const std::vector<at::Tensor>& ts) {
  uint64_t dtypeHash = 1469598103934665603ULL, shapeHash = 1469598103934665603ULL;
  auto mix = [](uint64_t& h, int64_t v) { h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ULL; };
  int64_t numel = 0;
  for (auto& t : ts) {
    mix(dtypeHash, static_cast<int64_t>(t.scalar_type()));
    mix(shapeHash, t.dim());
    for (auto d : t.sizes()) mix(shapeHash, d);
    numel += t.numel();
  }
  std::vector<int64_t> sig = {kind, static_cast<int64_t>(ts.size()), static_cast<int64_t>(dtypeHash >> 2), numel,
                              static_cast<int64_t>(shapeHash >> 2), -1, -1, -1};
  if (ts.size() == 1)
    for (int64_t d = 0; d < std::min<int64_t>(3, ts[0].dim()); ++d) sig[5 + d] = ts[0].size(d);
  return sig;
}

void agree(Group& g, const char* what, const std::vector<int64_t>& sig, const at::Device& device) {
  at::Tensor mine = at::tensor(sig, at::TensorOptions().dtype(at::kLong)).to(device);
  std::vector<at::Tensor> all;
  for (int r = 0; r < g.size; ++r) all.push_back(at::empty_like(mine));
  std::vector<std::vector<at::Tensor>> outputs = {all};
  std::vector<at::Tensor> inputs = {mine};
  std::vector<c10::intrusive_ptr<c10d::Work>> works = {
      launch(g, what, [&] { return g.pg->allgather(outputs, inputs, c10d::AllgatherOptions()); })};
  waitAll(g, what, works);
  at::Tensor table = at::stack(outputs[0]).cpu();  // (size, kSig)
  const int64_t* p = table.data_ptr<int64_t>();
  for (int r = 0; r < g.size; ++r) {
    if (std::equal(p + r * kSig, p + (r + 1) * kSig, sig.data())) continue;
    std::string msg = "ranks disagree: rank " + std::to_string(g.rank) + " calls " + describe(sig.data()) +
                      ", rank " + std::to_string(r) + " calls " + describe(p + r * kSig) +
                      (p[r * kSig + 1] == sig[1] && p[r * kSig + 3] == sig[3] ? " (dtypes or shapes differ)" : "");
    if (g.broken.empty()) g.broken = msg;
    throw std::runtime_error(std::string(what) + where(g) + ": " + msg);
  }
}

// --- collectives -----------------------------------------------------------------------------------------

// Buckets of consecutive tensors of one dtype and device, each at most capBytes (a tensor larger than the cap
// is a bucket of its own), like DistributedDataParallel's bucket_cap_mb.
std::vector<std::vector<size_t>> buckets(const std::vector<at::Tensor>& ts, int64_t capBytes) {
  std::vector<std::vector<size_t>> out;
  int64_t bytes = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    int64_t b = ts[i].numel() * static_cast<int64_t>(ts[i].element_size());
    bool fresh = out.empty() || bytes + b > capBytes || ts[out.back()[0]].scalar_type() != ts[i].scalar_type() ||
                 ts[out.back()[0]].device() != ts[i].device();
    if (fresh) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(i);
    bytes += b;
  }
  return out;
}

at::Tensor flatten(const std::vector<at::Tensor>& ts, const std::vector<size_t>& idx) {
  if (idx.size() == 1 && ts[idx[0]].is_contiguous()) return ts[idx[0]].view({-1});  // in place, no copy
  std::vector<at::Tensor> parts;
  for (size_t i : idx) parts.push_back(ts[i].reshape({-1}));
  return at::cat(parts);
}

void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& ts, const std::vector<size_t>& idx) {
  if (idx.size() == 1 && ts[idx[0]].is_contiguous() && flat.data_ptr() == ts[idx[0]].data_ptr()) return;
  int64_t offset = 0;
  for (size_t i : idx) {
    ts[i].copy_(flat.narrow(0, offset, ts[i].numel()).view(ts[i].sizes()));
    offset += ts[i].numel();
  }
}

// In-place sum or mean over ranks of every tensor, one collective per bucket (all queued, then waited).
void allReduceImpl(Group& g, std::vector<at::Tensor>& ts, bool average, int64_t capBytes, int64_t kind) {
  const char* what = kindName(kind);
  checkUsable(g, what);
  agree(g, what, signature(kind, ts), ts.empty() ? at::Device(at::kCPU) : ts[0].device());
  at::NoGradGuard noGrad;
  auto groups = buckets(ts, capBytes);
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& idx : groups) {
    flats.push_back(flatten(ts, idx));
    std::vector<at::Tensor> one = {flats.back()};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG: sum, then divide
    works.push_back(launch(g, what, [&] { return g.pg->allreduce(one, opts); }));
  }
  waitAll(g, what, works);
  for (size_t b = 0; b < groups.size(); ++b) {
    if (average) flats[b].div_(g.size);
    unflatten(flats[b], ts, groups[b]);
  }
}

std::vector<at::Tensor> allGatherImpl(Group& g, const at::Tensor& input, int64_t kind) {
  const char* what = kindName(kind);
  checkUsable(g, what);
  agree(g, what, signature(kind, {input}), input.device());
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> inputs = {input.detach().contiguous()};
  std::vector<at::Tensor> parts;
  for (int r = 0; r < g.size; ++r) parts.push_back(at::empty_like(inputs[0]));
  std::vector<std::vector<at::Tensor>> outputs = {parts};
  std::vector<c10::intrusive_ptr<c10d::Work>> works = {
      launch(g, what, [&] { return g.pg->allgather(outputs, inputs, c10d::AllgatherOptions()); })};
  waitAll(g, what, works);
  return outputs[0];
}

// ports torch/distributed/nn/functional.py#_AllGather (the autograd all_gather that sentence-transformers'
// util/distributed.py#all_gather_with_grad calls): forward concatenates every rank's rows; backward sums the
// incoming gradient over ranks (every rank's loss may depend on every rank's rows) and returns this rank's
// slice — a reduce-scatter, done here as all-reduce + narrow.
struct AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, int64_t groupId) {
    auto g = lookup(groupId);
    std::lock_guard<std::mutex> lock(g->mutex);
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["rows"] = input.size(0);
    return at::cat(allGatherImpl(*g, input, kGatherGrad), 0);  // (size*rows, ...)
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto g = lookup(ctx->saved_data["group"].toInt());
    std::lock_guard<std::mutex> lock(g->mutex);
    const int64_t rows = ctx->saved_data["rows"].toInt();
    // A single-output node always gets a materialised gradient. A rank whose loss does not use the gathered
    // rows never runs this node, so the others time out here: the loss must use them on every rank.
    std::vector<at::Tensor> sum = {grads[0].contiguous().clone()};  // (size*rows, ...)
    allReduceImpl(*g, sum, false, INT64_MAX, kGatherGradBack);
    return {sum[0].narrow(0, g->rank * rows, rows), at::Tensor()};  // (rows, ...)
  }
};

// --- exports ---------------------------------------------------------------------------------------------

int64_t optInt(const Napi::Object& o, const char* k, int64_t dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw ArgError(std::string("option '") + k + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}
std::string optStr(const Napi::Object& o, const char* k, const std::string& dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsString()) throw ArgError(std::string("option '") + k + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// newProcessGroup({backend, masterAddr, masterPort, rank, worldSize, timeoutMs, hostname?, interface?}) → group.
// Rank 0 hosts the TCPStore and waits (within the timeout) for every rank to join, like torchrun's c10d store.
Napi::Value newProcessGroup(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throw ArgError("newProcessGroup: expected an options object");
  auto o = info[0].As<Napi::Object>();
  auto g = std::make_shared<Group>();
  g->backend = optStr(o, "backend", "gloo");
  g->rank = static_cast<int>(optInt(o, "rank", -1));
  g->size = static_cast<int>(optInt(o, "worldSize", -1));
  g->timeout = Ms(optInt(o, "timeoutMs", 1800000));
  const std::string host = optStr(o, "masterAddr", "127.0.0.1");
  const int64_t port = optInt(o, "masterPort", -1);
  if (g->size < 1) throw ArgError("newProcessGroup: worldSize must be ≥ 1");
  if (g->rank < 0 || g->rank >= g->size) throw ArgError("newProcessGroup: rank must be in [0, worldSize)");
  if (port < 1 || port > 65535) throw ArgError("newProcessGroup: masterPort must be in [1, 65535]");
  if (g->timeout.count() < 1) throw ArgError("newProcessGroup: timeoutMs must be ≥ 1");

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(port);
  so.isServer = g->rank == 0;
  so.numWorkers = static_cast<size_t>(g->size);
  so.waitWorkers = true;
  so.timeout = g->timeout;
  // Joining fails (instead of waiting forever) when fewer than worldSize ranks show up within the timeout.
  auto joinError = [&](const char* step, const std::string& message) {
    return std::runtime_error(std::string(step) + " at " + host + ":" + std::to_string(port) + where(*g) +
                              " failed: " + message + " — not all " + std::to_string(g->size) +
                              " ranks joined within " + std::to_string(g->timeout.count()) +
                              " ms (check WORLD_SIZE, MASTER_ADDR/MASTER_PORT and that every rank started)");
  };
  try {
    g->store = c10::make_intrusive<c10d::TCPStore>(host, so);
  } catch (const c10::Error& e) {
    throw joinError("rendezvous", e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw joinError("rendezvous", e.what());
  }

  if (g->backend == "gloo") {
#ifdef RAGTUNE_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
    const std::string iface = optStr(o, "interface", ""), hostname = optStr(o, "hostname", "");
    if (!iface.empty())
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (!hostname.empty())
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    try {
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->size, opts);
    } catch (const c10::Error& e) {
      throw joinError("connecting the gloo group", e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw joinError("connecting the gloo group", e.what());
    }
#else
    throw std::runtime_error(
        "the gloo backend is not compiled in: this libtorch lacks c10d or gloo's headers were not found at build "
        "time (Debian: apt-get install libgloo-dev, then npm run build:native)");
#endif
  } else if (g->backend == "nccl") {
#ifdef RAGTUNE_HAVE_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = g->timeout;
    g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, g->rank, g->size, opts);
#else
    throw std::runtime_error(
        "the nccl backend is not available: the addon was built against a CPU-only libtorch or without nccl.h "
        "(use backend gloo, or build against a CUDA libtorch)");
#endif
  } else {
    throw ArgError("newProcessGroup: backend must be 'gloo' or 'nccl', got '" + g->backend + "'");
  }
  {
    std::lock_guard<std::mutex> lock(gRegistryMutex);
    g->id = gNextId++;
    gRegistry[g->id] = g;
  }
  auto ext = Napi::External<std::shared_ptr<Group>>::New(info.Env(), new std::shared_ptr<Group>(g),
                                                         [](Napi::Env, std::shared_ptr<Group>* p) { delete p; });
  ext.TypeTag(&kGroupTag);
  return ext;
}

// pgAllReduce(group, tensors[], average, bucketBytes, grads) — in place; with grads=true it reduces each
// tensor's .grad (tensors without one are skipped, so every rank must have the same set).
Napi::Value pgAllReduce(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info[0]);
  Args a(info, 1);
  auto ts = a.tensors(0);
  const bool average = a.b(1);
  const int64_t cap = a.i64(2);
  if (cap < 1) throw ArgError("allReduce: bucketBytes must be ≥ 1");
  if (a.has(3) && a.b(3)) {
    std::vector<at::Tensor> grads;
    for (auto& t : ts)
      if (t.grad().defined()) grads.push_back(t.grad());
    ts = std::move(grads);
  }
  std::lock_guard<std::mutex> lock(g->mutex);
  allReduceImpl(*g, ts, average, cap, kAllReduce);
  return info.Env().Undefined();
}

// pgBroadcast(group, tensors[], root, bucketBytes) — in place: every rank ends with root's values.
Napi::Value pgBroadcast(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info[0]);
  Args a(info, 1);
  auto ts = a.tensors(0);
  const int64_t root = a.i64(1), cap = a.i64(2);
  if (root < 0 || root >= g->size) throw ArgError("broadcast: root must be in [0, worldSize)");
  if (cap < 1) throw ArgError("broadcast: bucketBytes must be ≥ 1");
  std::lock_guard<std::mutex> lock(g->mutex);
  const char* what = "broadcast";
  checkUsable(*g, what);
  agree(*g, what, signature(kBroadcast, ts), ts.empty() ? at::Device(at::kCPU) : ts[0].device());
  at::NoGradGuard noGrad;
  auto groups = buckets(ts, cap);
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& idx : groups) {
    flats.push_back(flatten(ts, idx));
    std::vector<at::Tensor> one = {flats.back()};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    works.push_back(launch(*g, what, [&] { return g->pg->broadcast(one, opts); }));
  }
  waitAll(*g, what, works);
  for (size_t b = 0; b < groups.size(); ++b) unflatten(flats[b], ts, groups[b]);
  return info.Env().Undefined();
}

// pgAllGather(group, tensor) → one tensor per rank (same shape on every rank; no autograd).
Napi::Value pgAllGather(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info[0]);
  Args a(info, 1);
  std::lock_guard<std::mutex> lock(g->mutex);
  return wrapList(info.Env(), allGatherImpl(*g, a.t(0), kAllGather));
}

// pgAllGatherWithGrad(group, tensor (rows, ...)) → (worldSize*rows, ...) with autograd (see AllGatherWithGrad).
Napi::Value pgAllGatherWithGrad(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info[0]);
  Args a(info, 1);
  const at::Tensor& x = a.t(0);
  if (x.dim() < 1) throw ArgError("allGatherWithGrad: expected a tensor with at least one dimension");
  return wrap(info.Env(), AllGatherWithGrad::apply(x, g->id));
}

Napi::Value pgBarrier(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info[0]);
  std::lock_guard<std::mutex> lock(g->mutex);
  checkUsable(*g, "barrier");
  std::vector<c10::intrusive_ptr<c10d::Work>> works = {
      launch(*g, "barrier", [&] { return g->pg->barrier(c10d::BarrierOptions()); })};
  waitAll(*g, "barrier", works);
  return info.Env().Undefined();
}

// pgDestroy(group): releases the backend and the store now (idempotent); the handle refuses further calls.
Napi::Value pgDestroy(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal() || !info[0].As<Napi::External<std::shared_ptr<Group>>>().CheckTypeTag(&kGroupTag))
    throw ArgError("argument 0: expected a process group");
  std::shared_ptr<Group> g = *info[0].As<Napi::External<std::shared_ptr<Group>>>().Data();
  std::lock_guard<std::mutex> lock(g->mutex);
  g->pg.reset();
  g->store.reset();
  std::lock_guard<std::mutex> rlock(gRegistryMutex);
  gRegistry.erase(g->id);
  return info.Env().Undefined();
}

#endif  // RAGTUNE_HAVE_C10D

// distributedInfo() → which backends this build has, and why one is missing.
Napi::Value distributedInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
#ifdef RAGTUNE_HAVE_GLOO
  o.Set("gloo", true);
#else
  o.Set("gloo", false);
#endif
#ifdef RAGTUNE_HAVE_NCCL
  o.Set("nccl", true);
#else
  o.Set("nccl", false);
#endif
#ifndef RAGTUNE_HAVE_C10D
  o.Set("missing", "this libtorch has no torch.distributed (c10d) headers");
#elif !defined(RAGTUNE_HAVE_GLOO)
  o.Set("missing", "gloo's headers were not found at build time (Debian: apt-get install libgloo-dev)");
#endif
  return o;
}

}  // namespace

void initDistributed(Napi::Env env, Napi::Object exports) {
  exportFn(env, exports, "distributedInfo", distributedInfo);
#ifdef RAGTUNE_HAVE_C10D
  exportFn(env, exports, "newProcessGroup", newProcessGroup);
  exportFn(env, exports, "pgAllReduce", pgAllReduce);
  exportFn(env, exports, "pgBroadcast", pgBroadcast);
  exportFn(env, exports, "pgAllGather", pgAllGather);
  exportFn(env, exports, "pgAllGatherWithGrad", pgAllGatherWithGrad);
  exportFn(env, exports, "pgBarrier", pgBarrier);
  exportFn(env, exports, "pgDestroy", pgDestroy);
#endif
}

}  // namespace ragtune
