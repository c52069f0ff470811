#!/usr/bin/env node
// Builds native/*.cc into build/ragtune.node against the libtorch that scripts/find-libtorch.mjs finds
// (no download, no node-gyp: plain g++, one object file per source, two at a time, rebuilt only when a source,
// a header or the flags changed). Writes build/libtorch.json describing the libtorch it used.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { BLAS_WARNING, describeChoice, detectBlas, findLibtorch } from "./find-libtorch.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const nativeDir = join(root, "native");
const buildDir = join(root, "build");
const objDir = join(buildDir, "obj");
const quiet = process.argv.includes("--quiet");
const log = (s) => quiet || console.error(s);

function nodeInclude() {
  const tries = [
    process.env.NODE_INCLUDE,
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include/node"),
    join(dirname(dirname(process.execPath)), "include/node"),
    "/usr/include/node",
  ].filter(Boolean);
  const found = tries.find((d) => existsSync(join(d, "node_api.h")));
  if (!found) {
    throw new Error(
      `Node's C headers (node_api.h) were not found in: ${tries.join(", ")}.\n` +
        "Set NODE_INCLUDE to the folder holding node_api.h (on Debian: apt-get install libnode-dev, or use the Node.js archive).",
    );
  }
  return found;
}

function main() {
  let torch;
  try {
    torch = findLibtorch();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
  console.error(describeChoice(torch));
  const blas = detectBlas(torch.libDir);
  if (blas === "reference") console.error(BLAS_WARNING);

  const require = createRequire(import.meta.url);
  const napiInclude = require("node-addon-api").include_dir.replace(/"/g, "");
  const includes = [nodeInclude(), napiInclude, ...torch.includeDirs].filter((d) => d !== "/usr/include");
  const cflags = [
    "-O2",
    "-std=c++17",
    "-fPIC",
    "-fexceptions",
    "-fvisibility=hidden",
    "-Wno-deprecated-declarations",
    "-Wno-unused-parameter",
    `-D_GLIBCXX_USE_CXX11_ABI=${torch.cxx11Abi}`,
    "-DNAPI_VERSION=8",
    "-DNAPI_CPP_EXCEPTIONS",
    "-DNODE_ADDON_API_DISABLE_DEPRECATED",
    ...(torch.cuda ? ["-DRAGTUNE_CUDA=1"] : []),
    // extra flags, e.g. RAGTUNE_CXXFLAGS=-DRAGTUNE_NO_CUDA_STATS where the CUDA allocator headers don't compile
    ...(process.env.RAGTUNE_CXXFLAGS ?? "").split(/\s+/).filter(Boolean),
    ...includes.flatMap((d) => ["-isystem", d]),
  ];
  const libs = torch.cuda
    ? ["-ltorch", "-ltorch_cpu", "-ltorch_cuda", "-lc10", "-lc10_cuda"]
    : ["-ltorch", "-ltorch_cpu", "-lc10"];
  // --no-as-needed keeps libtorch_cuda linked although no symbol of it is referenced: its static initialisers
  // register the CUDA kernels.
  const ldflags = [
    "-shared",
    `-L${torch.libDir}`,
    "-Wl,--no-as-needed",
    ...libs,
    `-Wl,-rpath,${torch.libDir}`,
  ];

  mkdirSync(objDir, { recursive: true });
  const flagsHash = createHash("sha256")
    .update(JSON.stringify([cflags, ldflags]))
    .digest("hex")
    .slice(0, 16);
  const sources = readdirSync(nativeDir)
    .filter((f) => f.endsWith(".cc"))
    .sort();
  const headers = readdirSync(nativeDir).filter((f) => f.endsWith(".h"));
  const newestHeader = Math.max(0, ...headers.map((h) => statSync(join(nativeDir, h)).mtimeMs));
  const stampFile = join(objDir, "flags");
  const stamp = existsSync(stampFile) ? readFileSync(stampFile, "utf8") : "";

  const jobs = sources.map((src) => {
    const obj = join(objDir, src.replace(/\.cc$/, ".o"));
    const stale =
      stamp !== flagsHash ||
      !existsSync(obj) ||
      statSync(obj).mtimeMs < Math.max(statSync(join(nativeDir, src)).mtimeMs, newestHeader);
    return { src, obj, stale };
  });
  const out = join(buildDir, "ragtune.node");
  const stale = jobs.filter((j) => j.stale);
  if (stale.length === 0 && existsSync(out)) return;

  log(
    `building native addon against libtorch ${torch.version.string} from ${torch.source}` +
      `${torch.cuda ? " (CUDA)" : ""}, BLAS: ${blas}`,
  );
  const parallel = Math.max(1, Math.min(cpus().length, Number(process.env.RAGTUNE_BUILD_JOBS ?? 4)));
  runPool(stale, parallel, (j) => ["g++", [...cflags, "-c", join(nativeDir, j.src), "-o", j.obj + ".tmp"], j])
    .then(() => {
      for (const j of stale) renameSync(j.obj + ".tmp", j.obj);
      writeFileSync(stampFile, flagsHash);
      return exec("g++", [...jobs.map((j) => j.obj), ...ldflags, "-o", out + ".tmp"]);
    })
    .then(() => {
      renameSync(out + ".tmp", out);
      writeFileSync(
        join(buildDir, "libtorch.json"),
        JSON.stringify({ ...torch, blas, builtAt: new Date().toISOString() }, null, 2) + "\n",
      );
      log(`built ${out}`);
    })
    .catch((e) => {
      console.error(e.message);
      process.exit(1);
    });
}

function exec(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed (exit ${code})`))));
  });
}

async function runPool(items, n, toCmd) {
  const queue = [...items];
  const worker = async () => {
    for (let it = queue.shift(); it; it = queue.shift()) {
      const [cmd, args, j] = toCmd(it);
      log(`  compiling ${j.src}`);
      await exec(cmd, args);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

main();
