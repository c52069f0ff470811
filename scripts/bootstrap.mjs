// Makes a fresh checkout runnable: installs libtorch + OpenBLAS through apt when no libtorch is found (Debian/
// Ubuntu, as root or with sudo), runs `npm ci` when node_modules is missing, and builds the native addon.
// Used by `npm test` and `npm run demo` so each of them works as the first command on a new machine.
// Only Node built-ins here: this runs before the npm dependencies exist.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BLAS_WARNING, describeChoice, detectBlas, findLibtorch } from "./find-libtorch.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
export const APT_PACKAGES = ["libtorch-dev", "libgloo-dev", "libopenblas0-pthread", "g++", "make"];

function sh(cmd, args, opts = {}) {
  console.error(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
}

function haveCommand(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function aptInstall(packages) {
  if (!haveCommand("apt-get")) return false;
  const asRoot = process.getuid?.() === 0;
  if (!asRoot && !haveCommand("sudo")) return false;
  const pre = asRoot ? [] : ["sudo"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => sh(pre.length ? "sudo" : args[0], pre.length ? args : args.slice(1), { env });
  run(["apt-get", "update", "-qq"]);
  run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages]);
  return true;
}

function nodeHeadersPresent() {
  const dirs = [process.env.NODE_INCLUDE, join(process.execPath, "../../include/node"), "/usr/include/node"];
  return dirs.some((d) => d && existsSync(join(d, "node_api.h")));
}

export function bootstrap() {
  let torch;
  try {
    torch = findLibtorch();
  } catch (e) {
    console.error(`${e.message}\n\nTrying to install it with apt-get: ${APT_PACKAGES.join(" ")}`);
    if (!aptInstall(APT_PACKAGES)) throw new Error(`${e.message}\n(apt-get is not available or needs root)`);
    torch = findLibtorch();
  }
  console.error(describeChoice(torch));
  const blas = detectBlas(torch.libDir);
  if (blas === "reference") {
    console.error(BLAS_WARNING);
    if (torch.source.startsWith("system")) aptInstall(["libopenblas0-pthread"]);
  }
  if (!nodeHeadersPresent()) {
    // Installing Debian's libnode-dev could replace the machine's Node.js, so only say what is needed.
    throw new Error(
      "Node's C headers (node_api.h) were not found next to this Node.js. Install the Node.js build that " +
        "ships them (the nodejs package of nodesource or the official archive), or set NODE_INCLUDE.",
    );
  }
  if (!existsSync(join(root, "node_modules/.package-lock.json")))
    // onnxruntime-node (under transformers.js, a dev dependency for the interop tests) would download binaries
    // in its postinstall where npm runs install scripts; the registry is all this needs.
    sh("npm", ["ci", "--no-audit", "--no-fund"], {
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip", ONNXRUNTIME_NODE_INSTALL_CUDA: "skip" },
    });
  sh(process.execPath, ["scripts/build-native.mjs"]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    bootstrap();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
