// Finds a libtorch to build the addon against, offline, in this order:
//   1. an env var pointing at a libtorch root (LIBTORCH, then TORCH_DIR): a folder with include/ and lib/
//      (the libtorch archive, or the `torch` folder of a pip install);
//   2. the libtorch inside an installed Python `torch` package (RAGTUNE_PYTHON, python3, python). Python runs
//      isolated (`-I`: no current folder on sys.path, no PYTHON* variables, no user site) from an empty temporary
//      folder, and only absolute PATH entries are searched for it, so a `torch/` folder (or a `python3`) planted in
//      the current folder is never picked up and linked into the addon; a library in the current folder is used
//      only when named explicitly through LIBTORCH / TORCH_DIR;
//   3. the system one (Debian/Ubuntu `libtorch-dev`: headers in /usr/include, libs in the multiarch dir).
// Each candidate must have <torch/torch.h> and libtorch.so; its version comes from torch/version.h, its C++ ABI
// from TorchConfig.cmake (pip wheels before 2.7 used the pre-C++11 ABI) and CUDA from libtorch_cuda.so.
// Also warns when the BLAS behind libtorch is the reference BLAS (25× slower than OpenBLAS here).
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, isAbsolute, join, relative } from "node:path";

const HOW_TO_GET = `No libtorch was found. ragtune needs libtorch (the C++ library of PyTorch), 1.13 or 2.x. Any one of:
  1. Debian 12 / Ubuntu:  sudo apt-get install libtorch-dev libopenblas0-pthread
  2. Python PyTorch:      pip install torch   (ragtune uses the libtorch inside the package; CUDA wheels give GPU support)
  3. libtorch archive:    unpack libtorch-*.zip from pytorch.org and set LIBTORCH=/path/to/libtorch
Then run: npm run build:native`;

/** Reads TORCH_VERSION_MAJOR/MINOR/PATCH from a torch/version.h. */
function readVersion(includeDir) {
  const candidates = [
    join(includeDir, "torch/headeronly/version.h"), // libtorch ≥ 2.9
    join(includeDir, "torch/csrc/api/include/torch/version.h"),
    join(includeDir, "torch/version.h"),
  ];
  for (const f of candidates) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    const num = (name) => Number(new RegExp(`#define\\s+${name}\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
    const [major, minor, patch] = [
      num("TORCH_VERSION_MAJOR"),
      num("TORCH_VERSION_MINOR"),
      num("TORCH_VERSION_PATCH"),
    ];
    if (Number.isFinite(major)) return { major, minor, patch, string: `${major}.${minor}.${patch}` };
  }
  return undefined;
}

/** The _GLIBCXX_USE_CXX11_ABI value libtorch was built with (1 unless TorchConfig.cmake says 0). */
function readCxx11Abi(cmakeDirs) {
  for (const dir of cmakeDirs) {
    const f = join(dir, "TorchConfig.cmake");
    if (!existsSync(f)) continue;
    const m = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(readFileSync(f, "utf8"));
    if (m) return Number(m[1]);
  }
  return 1;
}

function candidate(source, includeDir, libDir, cmakeDirs) {
  if (!existsSync(join(includeDir, "torch/csrc/api/include/torch/torch.h"))) return undefined;
  if (!existsSync(join(libDir, "libtorch.so")) && !existsSync(join(libDir, "libtorch_cpu.so")))
    return undefined;
  const version = readVersion(includeDir);
  if (!version) return undefined;
  return {
    source,
    includeDirs: [includeDir, join(includeDir, "torch/csrc/api/include")],
    libDir,
    version,
    cxx11Abi: readCxx11Abi(cmakeDirs),
    cuda: existsSync(join(libDir, "libtorch_cuda.so")),
  };
}

function fromRoot(source, root) {
  return candidate(source, join(root, "include"), join(root, "lib"), [join(root, "share/cmake/Torch")]);
}

/** `name` on PATH, absolute entries only (an empty or relative entry would mean the current folder). */
export function whichAbsolute(name, env = process.env) {
  if (name.includes("/")) return isAbsolute(name) ? name : undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when `path` is the folder `dir` or inside it (after resolving symlinks where possible). */
function isInside(path, dir) {
  const real = (p) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const rel = relative(real(dir), real(path));
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

// find_spec locates the package without importing it (importing torch takes seconds); sys.executable says which
// interpreter really ran (a PATH entry may be a wrapper or a venv link).
const FIND_TORCH =
  "import importlib.util as u, os, sys; s = u.find_spec('torch'); " +
  "print(sys.executable); print(os.path.dirname(s.origin) if s and s.origin else '')";

function fromPython(env = process.env, cwd = process.cwd()) {
  const names = [env.RAGTUNE_PYTHON, "python3", "python"].filter(Boolean);
  const scratch = mkdtempSync(join(tmpdir(), "ragtune-find-torch-"));
  try {
    for (const name of names) {
      const py = whichAbsolute(name, env);
      if (py === undefined) continue;
      let out;
      try {
        out = execFileSync(py, ["-I", "-c", FIND_TORCH], {
          cwd: scratch,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
          timeout: 20_000,
        });
      } catch {
        continue;
      }
      const [exe = py, dir = ""] = out.split("\n").map((l) => l.trim());
      if (!dir) continue;
      // A venv inside the current folder that the user activated (its python on PATH) is their choice; a torch in the
      // current folder found by an interpreter from elsewhere is not (with -I it cannot be, short of a .pth trick).
      if (isInside(dir, cwd) && !isInside(py, cwd)) {
        console.error(
          `find-libtorch: ignoring ${dir} (found by ${exe}): it lies in the current folder; set LIBTORCH to use it.`,
        );
        continue;
      }
      const found = fromRoot(`Python torch (${exe}: ${dir})`, dir);
      if (found) return { ...found, python: exe };
    }
    return undefined;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function fromSystem() {
  const multiarch = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];
  for (const libDir of multiarch) {
    const found = candidate("system (libtorch-dev)", "/usr/include", libDir, [join(libDir, "cmake/Torch")]);
    if (found) return found;
  }
  return undefined;
}

/** Returns the libtorch to use, or throws an Error whose message says how to install one. */
export function findLibtorch(env = process.env) {
  for (const name of ["LIBTORCH", "TORCH_DIR"]) {
    const root = env[name];
    if (!root) continue;
    const found = fromRoot(`$${name}=${root}`, root);
    if (!found) {
      throw new Error(
        `$${name}=${root} does not look like a libtorch root: expected ${root}/include/torch/csrc/api/include/torch/torch.h and ${root}/lib/libtorch.so.\n\n${HOW_TO_GET}`,
      );
    }
    return found;
  }
  const found = fromPython(env) ?? fromSystem();
  if (!found) throw new Error(HOW_TO_GET);
  return found;
}

/** One line saying which libtorch (and which Python, when one was asked) was chosen, for build logs. */
export function describeChoice(t) {
  const py = t.python ? ` via ${t.python}` : "";
  return `libtorch ${t.version.string}${t.cuda ? " (CUDA)" : ""} from ${t.source}${py}: ${dirname(t.libDir)}`;
}

/**
 * Which BLAS the dynamic loader would give libtorch_cpu: "openblas", "mkl" (linked in), "reference", or
 * "unknown". Debian links libtorch against the generic libblas.so.3 alternative, which is the slow reference BLAS
 * unless OpenBLAS is installed.
 */
export function detectBlas(libDir) {
  const lib = join(libDir, "libtorch_cpu.so");
  let ldd = "";
  try {
    ldd = execFileSync("ldd", [lib], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return "unknown";
  }
  if (/libmkl|libiomp/.test(ldd)) return "mkl";
  const m = /libblas\.so\.3 => (\S+)/.exec(ldd);
  if (!m) return /openblas/.test(ldd) ? "openblas" : "unknown";
  let target = m[1];
  try {
    target = realpathSync(target);
  } catch {
    /* keep the unresolved path */
  }
  if (/openblas/i.test(target)) return "openblas";
  if (/blis|atlas/i.test(target)) return "other";
  return "reference";
}

export const BLAS_WARNING =
  "warning: libtorch uses the reference BLAS (measured 25x slower than OpenBLAS: 4.8 vs 117 GFLOP/s).\n" +
  "         Install OpenBLAS: sudo apt-get install libopenblas0-pthread";

// CLI: print what was found (used by .ci/run and for users' bug reports).
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const t = findLibtorch();
    console.error(describeChoice(t));
    const blas = detectBlas(t.libDir);
    console.log(JSON.stringify({ ...t, blas }, null, 2));
    if (blas === "reference") console.error(BLAS_WARNING);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
