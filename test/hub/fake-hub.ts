// A miniature Hugging Face hub on 127.0.0.1 for the hub tests: the URL scheme, headers and error codes that
// huggingface_hub relies on, served by node:http on random ports. Two servers, because the real hub redirects LFS
// files to a CDN on another host: the "hub" (API + resolve URLs) and the "cdn" (LFS blobs, Range support). Every
// request is logged so tests can count them and inspect their headers.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeFile {
  path: string;
  content: Buffer;
  /** Served like an LFS file: HEAD → 302 to the CDN with X-Linked-Etag = sha256 and X-Linked-Size. */
  lfs: boolean;
}

export interface FakeRepo {
  id: string;
  /** Needs `Authorization: Bearer <FakeHub.validToken>`. */
  private?: boolean;
  /** branch/tag name → commit sha. */
  refs: Record<string, string>;
  /** commit sha → files at that commit. */
  commits: Record<string, FakeFile[]>;
}

export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  /** Raw path + query, still percent-encoded. */
  url: string;
  headers: IncomingMessage["headers"];
  status?: number;
}

export const sha1Git = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Deterministic pseudo-random bytes (a fake safetensors file). */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2));

export const SHA_MAIN = "a".repeat(8) + "1234567890abcdef1234567890abcdef";
export const SHA_V1 = "b".repeat(8) + "1234567890abcdef1234567890abcdef";
export const MODEL_BYTES = bytes(4096, 7);
export const MODEL_V1_BYTES = bytes(4096, 3);

/** The files of a tiny sentence-transformers model, plus files that must not be downloaded. */
export function tinyModelFiles(version: "main" | "v1"): FakeFile[] {
  const f = (path: string, content: Buffer, lfs = false): FakeFile => ({ path, content, lfs });
  const pooling = json({ word_embedding_dimension: 32, pooling_mode_mean_tokens: true });
  return [
    f(".gitattributes", Buffer.from("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")),
    f("README.md", Buffer.from("# tiny-model\n")),
    f(
      "modules.json",
      json([{ idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" }]),
    ),
    f("config.json", json({ model_type: "bert", hidden_size: 32, version })),
    f("config_sentence_transformers.json", json({ similarity_fn_name: "cosine" })),
    f("sentence_bert_config.json", json({ max_seq_length: 128, do_lower_case: false })),
    f("tokenizer.json", json({ version: "1.0", model: { type: "WordPiece" } })),
    f("tokenizer_config.json", json({ do_lower_case: true })),
    f("special_tokens_map.json", json({ cls_token: "[CLS]" })),
    f("vocab.txt", Buffer.from("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")),
    f("1_Pooling/config.json", pooling),
    f("model.safetensors", version === "main" ? MODEL_BYTES : MODEL_V1_BYTES, true),
    f("pytorch_model.bin", bytes(2048, 11), true),
    f("onnx/model.onnx", bytes(1024, 13), true),
    f("onnx/config.json", json({ onnx: true })),
  ];
}

export function tinyRepo(id = "ragtune-test/tiny-model", isPrivate = false): FakeRepo {
  return {
    id,
    private: isPrivate,
    refs: { main: SHA_MAIN, v1: SHA_V1, "refs/pr/1": SHA_V1 },
    commits: { [SHA_MAIN]: tinyModelFiles("main"), [SHA_V1]: tinyModelFiles("v1") },
  };
}

export class FakeHub {
  readonly requests: LoggedRequest[] = [];
  readonly repos = new Map<string, FakeRepo>();
  validToken = "hf_test_token";
  /** CDN behaviour switches. */
  honourRange = true;
  /** "bytes": same length, one byte flipped; "short": a clean response 100 bytes short. */
  corrupt: "bytes" | "short" | undefined;
  /** Destroy the socket once after sending this many body bytes of an LFS download. */
  dropOnceAfter: number | undefined;
  endpoint = "";
  cdn = "";
  private readonly hubServer: Server;
  private readonly cdnServer: Server;
  private readonly blobs = new Map<string, Buffer>();

  private constructor() {
    this.hubServer = createServer((req, res) => this.handleHub(req, res));
    this.cdnServer = createServer((req, res) => this.handleCdn(req, res));
  }

  static async start(repos: FakeRepo[] = [tinyRepo()]): Promise<FakeHub> {
    const hub = new FakeHub();
    for (const r of repos) hub.addRepo(r);
    const listen = (s: Server) =>
      new Promise<number>((ok) => s.listen(0, "127.0.0.1", () => ok((s.address() as AddressInfo).port)));
    hub.endpoint = `http://127.0.0.1:${await listen(hub.hubServer)}`;
    hub.cdn = `http://127.0.0.1:${await listen(hub.cdnServer)}`;
    return hub;
  }

  addRepo(repo: FakeRepo): void {
    this.repos.set(repo.id, repo);
    for (const files of Object.values(repo.commits)) {
      for (const f of files) if (f.lfs) this.blobs.set(sha256(f.content), f.content);
    }
  }

  async close(): Promise<void> {
    for (const s of [this.hubServer, this.cdnServer]) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
  }

  /** Logged requests matching a predicate (all of them without one). */
  count(pred: (r: LoggedRequest) => boolean = () => true): number {
    return this.requests.filter(pred).length;
  }

  private log(server: "hub" | "cdn", req: IncomingMessage, res: ServerResponse): void {
    const entry: LoggedRequest = {
      server,
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
    };
    this.requests.push(entry);
    res.on("finish", () => (entry.status = res.statusCode));
  }

  private fail(
    res: ServerResponse,
    status: number,
    code: string | undefined,
    message: string,
    commit?: string,
  ) {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "x-error-message": message,
    };
    if (code) headers["x-error-code"] = code;
    if (commit) headers["x-repo-commit"] = commit;
    res.writeHead(status, headers).end(JSON.stringify({ error: message }));
  }

  /** Auth like the hub: bad token → 401; unknown or private repo without access → 401 anonymous, 404 with a token. */
  private access(req: IncomingMessage, res: ServerResponse, repoId: string): FakeRepo | undefined {
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== `Bearer ${this.validToken}`) {
      this.fail(res, 401, undefined, "Invalid credentials in Authorization header");
      return undefined;
    }
    const repo = this.repos.get(repoId);
    if (!repo || (repo.private && auth === undefined)) {
      this.fail(res, auth ? 404 : 401, "RepoNotFound", "Repository not found");
      return undefined;
    }
    return repo;
  }

  private resolveRevision(res: ServerResponse, repo: FakeRepo, rev: string): string | undefined {
    const sha = repo.refs[rev] ?? (repo.commits[rev] ? rev : undefined);
    if (!sha) this.fail(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
    return sha;
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    this.log("hub", req, res);
    const url = new URL(req.url ?? "/", this.endpoint);
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    // GET /api/models/{org}/{name}/revision/{revision}
    if (parts[0] === "api" && parts[1] === "models" && parts[4] === "revision" && parts.length === 6) {
      const repo = this.access(req, res, `${parts[2]}/${parts[3]}`);
      if (!repo) return;
      const sha = this.resolveRevision(res, repo, parts[5] ?? "");
      if (!sha) return;
      const siblings = (repo.commits[sha] ?? []).map((f) => ({ rfilename: f.path }));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: repo.id, modelId: repo.id, sha, private: !!repo.private, siblings }));
      return;
    }
    // /api/resolve-cache/models/{org}/{name}/{sha}/{file...}: where the hub now sends small files (relative 307).
    if (parts[0] === "api" && parts[1] === "resolve-cache" && parts[2] === "models") {
      const repo = this.access(req, res, `${parts[3]}/${parts[4]}`);
      if (repo) this.serveFile(req, res, repo, parts[5] ?? "", parts.slice(6).join("/"), false);
      return;
    }
    // HEAD|GET /{org}/{name}/resolve/{revision}/{file...}
    if (parts[2] === "resolve" && parts.length >= 5) {
      const repo = this.access(req, res, `${parts[0]}/${parts[1]}`);
      if (!repo) return;
      const sha = this.resolveRevision(res, repo, parts[3] ?? "");
      if (sha) this.serveFile(req, res, repo, sha, parts.slice(4).join("/"), true);
      return;
    }
    this.fail(res, 404, undefined, "Not found");
  }

  private serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    repo: FakeRepo,
    sha: string,
    path: string,
    top: boolean,
  ) {
    const file = (repo.commits[sha] ?? []).find((f) => f.path === path);
    if (!file) {
      this.fail(res, 404, "EntryNotFound", `${path} does not exist on "${sha}"`, sha);
      return;
    }
    if (file.lfs) {
      const digest = sha256(file.content);
      const pointer = Buffer.from(
        `version https://git-lfs.github.com/spec/v1\noid sha256:${digest}\nsize ${file.content.length}\n`,
      );
      const body = Buffer.from("Found. Redirecting");
      res.writeHead(302, {
        location: `${this.cdn}/lfs/${digest}?X-Amz-Signature=fake`,
        "x-repo-commit": sha,
        etag: `"${sha1Git(pointer)}"`,
        "x-linked-etag": `"${digest}"`,
        "x-linked-size": String(file.content.length),
        "content-length": String(body.length),
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    if (top) {
      // Like the hub today: small files answer with a relative redirect to /api/resolve-cache/... (same host).
      const location = `/api/resolve-cache/models/${repo.id}/${sha}/${path.split("/").map(encodeURIComponent).join("/")}`;
      res.writeHead(307, { location, "x-repo-commit": sha, "content-length": "0" }).end();
      return;
    }
    res.writeHead(200, {
      "x-repo-commit": sha,
      etag: `"${sha1Git(file.content)}"`,
      "content-length": String(file.content.length),
      "content-type": "application/octet-stream",
    });
    res.end(req.method === "HEAD" ? undefined : file.content);
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    this.log("cdn", req, res);
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(req.url ?? "");
    let content = m ? this.blobs.get(m[1] ?? "") : undefined;
    if (!content) {
      res.writeHead(404).end();
      return;
    }
    if (this.corrupt === "bytes") {
      content = Buffer.from(content);
      content[10] = (content[10] ?? 0) ^ 0xff;
    } else if (this.corrupt === "short") {
      content = content.subarray(0, content.length - 100);
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && this.honourRange) {
      start = Number(range[1]);
      if (start >= content.length) {
        res.writeHead(416, { "content-range": `bytes */${content.length}` }).end();
        return;
      }
      res.writeHead(206, {
        "content-range": `bytes ${start}-${content.length - 1}/${content.length}`,
        "content-length": String(content.length - start),
      });
    } else {
      res.writeHead(200, { "content-length": String(content.length) });
    }
    const body = content.subarray(start);
    if (this.dropOnceAfter !== undefined && body.length > this.dropOnceAfter) {
      const cut = this.dropOnceAfter;
      this.dropOnceAfter = undefined;
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(req.method === "HEAD" ? undefined : body);
  }
}
