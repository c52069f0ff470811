// Entry point of the ragtune addon: registers the parts and sets libtorch's thread count to the machine's
// cores (Debian's libtorch defaults to one thread).
#include <thread>

#include "common.h"

namespace ragtune {

// native/distributed.cc (declared here rather than in common.h so adding it does not rebuild every part).
void initDistributed(Napi::Env env, Napi::Object exports);
// native/malloc-policy.cc
void initMallocPolicy(Napi::Env env, Napi::Object exports);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initCore(env, exports);
  initOps(env, exports);
  initTraining(env, exports);
  initDistributed(env, exports);
  initMallocPolicy(env, exports);
  unsigned cores = std::thread::hardware_concurrency();
  if (cores > 0 && at::get_num_threads() < static_cast<int>(cores)) at::set_num_threads(static_cast<int>(cores));
  return exports;
}

}  // namespace ragtune

// NODE_API_MODULE pastes the function name into an identifier, so it needs an unqualified name.
static Napi::Object InitRagtune(Napi::Env env, Napi::Object exports) { return ragtune::Init(env, exports); }
NODE_API_MODULE(ragtune_addon, InitRagtune)
