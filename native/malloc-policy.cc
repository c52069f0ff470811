// glibc's malloc, tuned for tensors: freed blocks up to 32 MiB stay in the heap for the next step.
//
// Why: libtorch allocates every op's output with malloc. glibc's defaults start with blocks above 128 KiB
// mmap'd (its threshold then follows the largest freed block, up to 32 MiB) and trim the heap's top once 2× that
// is free, which a backward pass does every step when it frees the activations: each training step then
// first-touches its memory again (~100k page faults per packed bge-small step on the 2-core machine, and in
// AdamW temporaries the size of the word embeddings). configureMalloc fixes the mmap threshold at glibc's
// largest (32 MiB) and keeps up to 1 GiB free at the heap's top. What stays: blocks above 32 MiB are mmap'd as
// before (ragtune keeps its own tensors below that where it can: attention blocks, AdamW's temporaries), and the
// heap behaves as glibc's does after its threshold has grown, with 1 GiB instead of 64 MiB of top kept.
//
// Turning mmap off altogether (M_MMAP_MAX 0) removes more faults but lets the heap grow without bound when
// aligned blocks of changing sizes interleave with small ones (measured: +70 MB every 10 steps, for ever).
#include <cstdlib>  // defines __GLIBC__ where the C library is glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

namespace ragtune {
namespace {

// configureMalloc(mmapThreshold, trimThreshold) -> bool: mallopt(M_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD).
// False (nothing changed) where the C library is not glibc or refuses the values.
Napi::Value configureMalloc(const Napi::CallbackInfo& info) {
  Args a(info, 0);
  int64_t mmapThreshold = a.i64(0), trim = a.i64(1);
  if (mmapThreshold < 0 || mmapThreshold > INT32_MAX || trim < 0 || trim > INT32_MAX)
    throw ArgError("configureMalloc: expected 0 <= mmapThreshold, trimThreshold < 2^31");
  bool configured = false;
#if defined(__GLIBC__)
  configured = mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmapThreshold)) == 1 &&
               mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim)) == 1;
#endif
  return Napi::Boolean::New(info.Env(), configured);
}

}  // namespace

void initMallocPolicy(Napi::Env env, Napi::Object exports) {
  exportFn(env, exports, "configureMalloc", configureMalloc);
}

}  // namespace ragtune
