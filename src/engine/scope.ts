// Memory and grad-mode scopes. The JS garbage collector sees a tensor as a few bytes and cannot know it holds
// megabytes of (GPU) memory, so ragtune frees tensors deterministically: `dispose()`, `using`, or `tidy(fn)`,
// which frees every tensor created inside fn except the ones it returns. The addon's finalizer is only a net.
import { native } from "./native.ts";

/** What a scope needs to know of a tensor (tensor.ts implements it; no import cycle). */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

/** Registers a new tensor with the innermost tidy scope (called by the Tensor constructor). */
export function track(t: Disposable): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Exempts tensors from every enclosing tidy scope: they live until disposed. Returns its argument. */
export function keep<T>(value: T): T {
  forEachDisposable(value, (t) => {
    for (const s of scopes) s.delete(t);
  });
  return value;
}

function forEachDisposable(value: unknown, fn: (t: Disposable) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (isDisposable(value)) {
    fn(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) forEachDisposable(v, fn, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) forEachDisposable(v, fn, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) forEachDisposable(v, fn, seen);
  }
}

function isDisposable(v: object): v is Disposable {
  return typeof (v as Disposable).dispose === "function" && "isDisposed" in v;
}

/**
 * Runs fn and disposes every tensor created during it, except those reachable from its result (tensors,
 * arrays, Maps and plain objects are searched). Returned tensors move to the enclosing scope. If fn throws,
 * all its tensors are freed. fn must be synchronous: an async fn would escape the scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error("tidy(fn): fn returned a Promise; tidy only works with synchronous functions");
  }
  const kept = new Set<Disposable>();
  forEachDisposable(result, (t) => kept.add(t));
  for (const t of scope) {
    if (kept.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

/** Runs fn with autograd recording off (torch.no_grad), restoring the previous mode afterwards. */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with autograd recording on (torch.enable_grad), e.g. inside a noGrad region. */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** `using _g = noGradGuard()` turns autograd off until the end of the block (nested guards restore). */
export function noGradGuard(): { [Symbol.dispose](): void } {
  const prev = native.setGradEnabled(false);
  return { [Symbol.dispose]: () => void native.setGradEnabled(prev) };
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Number of native tensors alive (created and not yet freed): a leak detector for tests. */
export function liveTensors(): number {
  return native.liveTensors();
}
