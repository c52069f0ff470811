// Runs a test body once per device: always "cpu", and "cuda" too when a GPU is usable, so the same engine suite
// checks the CUDA kernels on a GPU machine. RAGTUNE_TEST_DEVICES=cpu (or =cuda) restricts the list.
import { test, type TestContext, type TestOptions } from "node:test";
import { cudaAvailable, setNumThreads, type Device } from "../../src/engine/index.ts";

// The engine tests use tiny tensors: one CPU thread is as fast, and on a busy machine OpenMP's spinning threads
// made them 5-10x slower (measured on the 2-core CI machine under load). RAGTUNE_TEST_THREADS overrides it.
setNumThreads(Number(process.env.RAGTUNE_TEST_THREADS ?? 1));

/** The devices the engine tests run on here. */
export function testDevices(): Device[] {
  const all: Device[] = cudaAvailable() ? ["cpu", "cuda"] : ["cpu"];
  const only = process.env.RAGTUNE_TEST_DEVICES?.split(",").map((s) => s.trim());
  return only ? all.filter((d) => only.includes(d)) : all;
}

/** Registers `name [device]` for every test device. */
export function forEachDevice(
  name: string,
  body: (device: Device, t: TestContext) => void | Promise<void>,
  options: TestOptions = {},
): void {
  for (const device of testDevices()) test(`${name} [${device}]`, options, (t) => body(device, t));
}
