// The write side of the miniature hub (fake-hub.ts serves downloads): the endpoints @huggingface/hub 2.17 calls
// to create a repo and commit files (lib/who-am-i.ts, model-info.ts, create-repo.ts, create-branch.ts,
// commit.ts), served by node:http on 127.0.0.1. Like the real hub it decides which files go through LFS
// (preupload), hands out storage URLs for them on a second server (the "S3" of the real hub: single PUT, or
// multipart parts + a completion POST above a size threshold), verifies every uploaded object's sha256 and size,
// and rejects a commit that names an LFS object never uploaded or carries a large or binary file inline.
// Everything received is recorded so tests can compare the committed files byte for byte.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { type FakeFile, type FakeRepo, sha256 } from "./fake-hub.ts";

export interface StoredFile {
  content: Buffer;
  /** Arrived as an LFS object (preupload said "lfs") rather than inline in the commit. */
  lfs: boolean;
}

export interface WriteRepo {
  id: string;
  private: boolean;
  /** branch → commit sha. */
  refs: Record<string, string>;
  /** commit sha → files at that commit. */
  commits: Record<string, { title: string; files: Map<string, StoredFile> }>;
}

export interface User {
  name: string;
  orgs: string[];
  role: "read" | "write";
}

export interface WriteRequest {
  server: "hub" | "storage";
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
  status?: number;
}

/** The hub's threshold: files of 10 MB or more always go through LFS (as do binary files and *.safetensors). */
export const LFS_THRESHOLD = 10_000_000;
const LFS_EXTENSIONS = /\.(safetensors|onnx|onnx_data|bin|model|pt|pth|h5|msgpack|tflite|zip|gz)$/;
const GITATTRIBUTES =
  "*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n";

const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

export class FakeWriteHub {
  readonly requests: WriteRequest[] = [];
  readonly repos = new Map<string, WriteRepo>();
  /** token → user. */
  readonly users = new Map<string, User>([
    ["hf_write_token", { name: "alice", orgs: ["alice-org"], role: "write" }],
    ["hf_read_token", { name: "alice", orgs: ["alice-org"], role: "read" }],
  ]);
  /** LFS objects received, by sha256 (verified). */
  readonly objects = new Map<string, Buffer>();
  /** Names taken by something create-repo refuses with 409 that the model API does not show. */
  readonly takenNames = new Set<string>();
  /** Objects larger than this get a multipart upload (parts of chunkSize bytes). */
  multipartThreshold = 10_000_000;
  chunkSize = 5 * 2 ** 20;
  /** Called on every storage request before it is answered (a test changes a local file mid-upload). */
  onStorageRequest: ((req: WriteRequest) => void) | undefined;
  /** Answer every storage request with this status (an expired signed URL: 403). */
  storageStatus: number | undefined;
  /** The LFS transfer the batch answer picks; "xet" points the token refresh at the storage server. */
  lfsTransfer: "basic" | "xet" = "basic";
  /** Answer the next commit with 409 "A commit has happened since" (a concurrent commit). */
  conflictOnCommit = false;
  endpoint = "";
  storage = "";
  private readonly hubServer: Server;
  private readonly storageServer: Server;
  private readonly parts = new Map<string, Map<number, Buffer>>();
  private commitCounter = 0;

  private constructor() {
    this.hubServer = createServer((req, res) => void this.receive("hub", req, res));
    this.storageServer = createServer((req, res) => void this.receive("storage", req, res));
  }

  static async start(): Promise<FakeWriteHub> {
    const hub = new FakeWriteHub();
    const listen = (s: Server) =>
      new Promise<number>((ok) => s.listen(0, "127.0.0.1", () => ok((s.address() as AddressInfo).port)));
    hub.endpoint = `http://127.0.0.1:${await listen(hub.hubServer)}`;
    hub.storage = `http://127.0.0.1:${await listen(hub.storageServer)}`;
    return hub;
  }

  async close(): Promise<void> {
    for (const s of [this.hubServer, this.storageServer]) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
  }

  /** A repo with one commit holding .gitattributes, as the hub creates it. */
  addRepo(id: string, isPrivate = false): WriteRepo {
    const sha = this.newSha(id);
    const files = new Map([[".gitattributes", { content: Buffer.from(GITATTRIBUTES), lfs: false }]]);
    const repo: WriteRepo = {
      id,
      private: isPrivate,
      refs: { main: sha },
      commits: { [sha]: { title: "initial commit", files } },
    };
    this.repos.set(id, repo);
    return repo;
  }

  /** The files of a branch's head. */
  files(repoId: string, branch = "main"): Map<string, StoredFile> {
    const repo = this.repos.get(repoId);
    const sha = repo?.refs[branch];
    if (!repo || !sha) throw new Error(`no ${repoId}@${branch}`);
    return repo.commits[sha]?.files ?? new Map();
  }

  /** The repo as fake-hub.ts serves it, to download what was pushed. */
  toFakeRepo(repoId: string): FakeRepo {
    const repo = this.repos.get(repoId);
    if (!repo) throw new Error(`no ${repoId}`);
    const commits: Record<string, FakeFile[]> = {};
    for (const [sha, c] of Object.entries(repo.commits)) {
      commits[sha] = [...c.files].map(([path, f]) => ({ path, content: f.content, lfs: f.lfs }));
    }
    return { id: repo.id, private: repo.private, refs: { ...repo.refs }, commits };
  }

  count(pred: (r: WriteRequest) => boolean = () => true): number {
    return this.requests.filter(pred).length;
  }

  private newSha(seed: string): string {
    return sha1(`${seed}:${this.commitCounter++}`);
  }

  private async receive(server: "hub" | "storage", req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const entry: WriteRequest = {
      server,
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    this.requests.push(entry);
    res.on("finish", () => (entry.status = res.statusCode));
    try {
      if (server === "hub") this.handleHub(entry, res);
      else this.handleStorage(entry, res);
    } catch (e) {
      this.fail(res, 500, undefined, `fake hub bug: ${(e as Error).message}`);
    }
  }

  private fail(res: ServerResponse, status: number, code: string | undefined, message: string): void {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "x-request-id": "req-fake",
    };
    if (code) headers["x-error-code"] = code;
    res.writeHead(status, headers).end(JSON.stringify({ error: message }));
  }

  private send(res: ServerResponse, body: unknown, type = "application/json"): void {
    res.writeHead(200, { "content-type": type }).end(JSON.stringify(body));
  }

  /** The caller, or undefined after answering 401 (no or unknown token). */
  private user(req: WriteRequest, res: ServerResponse): User | undefined {
    const auth = req.headers.authorization;
    const user = auth?.startsWith("Bearer ") ? this.users.get(auth.slice(7)) : undefined;
    if (!user) {
      this.fail(
        res,
        401,
        undefined,
        auth ? "Invalid credentials in Authorization header" : "You must be authenticated",
      );
      return undefined;
    }
    return user;
  }

  private owns(user: User, repoId: string): boolean {
    const ns = repoId.split("/")[0] ?? "";
    return ns === user.name || user.orgs.includes(ns);
  }

  /** A repo the caller may write to, or undefined after answering 401/403/404. */
  private writable(req: WriteRequest, res: ServerResponse, repoId: string): WriteRepo | undefined {
    const user = this.user(req, res);
    if (!user) return undefined;
    const repo = this.repos.get(repoId);
    if (!repo || (repo.private && !this.owns(user, repoId))) {
      this.fail(res, 404, "RepoNotFound", "Repository not found");
      return undefined;
    }
    if (!this.owns(user, repoId) || user.role !== "write") {
      this.fail(res, 403, undefined, `You don't have the rights to write to ${repoId}`);
      return undefined;
    }
    return repo;
  }

  private handleHub(req: WriteRequest, res: ServerResponse): void {
    const url = new URL(req.url, this.endpoint);
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /api/whoami-v2") {
      const user = this.user(req, res);
      if (!user) return;
      this.send(res, {
        type: "user",
        name: user.name,
        orgs: user.orgs.map((name) => ({ type: "org", name })),
        auth: {
          type: "access_token",
          accessToken: { displayName: "test", role: user.role, createdAt: "2026-01-01T00:00:00Z" },
        },
      });
      return;
    }
    if (route === "POST /api/repos/create") {
      const user = this.user(req, res);
      if (!user) return;
      const body = JSON.parse(req.body.toString("utf8")) as {
        name: string;
        organization?: string;
        visibility?: string;
        type?: string;
      };
      const id = `${body.organization ?? user.name}/${body.name}`;
      if (!this.owns(user, id) || user.role !== "write") {
        this.fail(
          res,
          403,
          undefined,
          `You don't have the rights to create a model under the namespace "${id.split("/")[0]}"`,
        );
        return;
      }
      if (this.repos.has(id) || this.takenNames.has(id)) {
        this.fail(res, 409, undefined, "You already created this model repo");
        return;
      }
      this.addRepo(id, body.visibility === "private");
      this.send(res, { url: `${this.endpoint}/${id}`, name: id, id: sha1(id) });
      return;
    }
    // GET /api/models/{ns}/{name}/revision/{rev}: model info (HEAD = the default branch).
    if (req.method === "GET" && parts[0] === "api" && parts[1] === "models" && parts[4] === "revision") {
      const id = `${parts[2]}/${parts[3]}`;
      const auth = req.headers.authorization;
      const user = auth ? this.user(req, res) : undefined;
      if (auth && !user) return;
      const repo = this.repos.get(id);
      if (!repo || (repo.private && !(user && this.owns(user, id)))) {
        this.fail(res, user ? 404 : 401, "RepoNotFound", "Repository not found");
        return;
      }
      const rev = parts.slice(5).join("/");
      const sha = repo.refs[rev === "HEAD" ? "main" : rev];
      if (!sha) {
        this.fail(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
        return;
      }
      const siblings = [...(repo.commits[sha]?.files.keys() ?? [])].map((rfilename) => ({ rfilename }));
      this.send(res, {
        _id: sha1(id),
        id,
        sha,
        private: repo.private,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: "2026-01-01T00:00:00.000Z",
        siblings,
      });
      return;
    }
    // POST /api/models/{ns}/{name}/{branch|preupload|commit}/{rev}
    if (req.method === "POST" && parts[0] === "api" && parts[1] === "models" && parts.length >= 6) {
      const id = `${parts[2]}/${parts[3]}`;
      const action = parts[4];
      const rev = parts.slice(5).join("/");
      const repo = this.writable(req, res, id);
      if (!repo) return;
      if (action === "branch") {
        if (repo.refs[rev]) {
          this.fail(res, 409, undefined, "Reference already exists");
          return;
        }
        const start =
          (JSON.parse(req.body.toString("utf8") || "{}") as { startingPoint?: string }).startingPoint ??
          "main";
        const sha = repo.refs[start] ?? start;
        if (!repo.commits[sha]) {
          this.fail(res, 404, "RevisionNotFound", `Invalid rev id: ${start}`);
          return;
        }
        repo.refs[rev] = sha;
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
        return;
      }
      if (!repo.refs[rev]) {
        this.fail(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
        return;
      }
      if (action === "preupload") return this.preupload(req, res);
      if (action === "commit") return this.commit(req, res, repo, rev);
    }
    // POST /{ns}/{name}.git/info/lfs/objects/batch
    if (
      req.method === "POST" &&
      parts.length === 6 &&
      parts[1]?.endsWith(".git") &&
      parts.slice(2).join("/") === "info/lfs/objects/batch"
    ) {
      const repo = this.writable(req, res, `${parts[0]}/${parts[1].slice(0, -4)}`);
      if (repo) this.lfsBatch(req, res);
      return;
    }
    this.fail(res, 404, undefined, `fake hub: no route for ${route}`);
  }

  private preupload(req: WriteRequest, res: ServerResponse): void {
    const body = JSON.parse(req.body.toString("utf8")) as {
      files: { path: string; size: number; sample: string }[];
    };
    const files = body.files.map((f) => {
      const binary = Buffer.from(f.sample, "base64").includes(0);
      const lfs = f.size >= LFS_THRESHOLD || binary || LFS_EXTENSIONS.test(f.path);
      return { path: f.path, uploadMode: lfs ? "lfs" : "regular", shouldIgnore: false };
    });
    this.send(res, { files, commitOid: "" });
  }

  private lfsBatch(req: WriteRequest, res: ServerResponse): void {
    const body = JSON.parse(req.body.toString("utf8")) as {
      operation: string;
      objects: { oid: string; size: number }[];
    };
    if (this.lfsTransfer === "xet") {
      // The real hub's xet answer: an upload action whose href is where the client refreshes its xet write token.
      const upload = { href: `${this.storage}/xet-write-token`, header: { "X-Xet-Session-Id": "s1" } };
      const objects = body.objects.map(({ oid, size }) => ({ oid, size, actions: { upload } }));
      res
        .writeHead(200, { "content-type": "application/vnd.git-lfs+json" })
        .end(JSON.stringify({ transfer: "xet", objects }));
      return;
    }
    const objects = body.objects.map(({ oid, size }) => {
      if (this.objects.get(oid)?.length === size) return { oid, size }; // already stored: no upload action
      if (size <= this.multipartThreshold)
        return { oid, size, actions: { upload: { href: `${this.storage}/put/${oid}/${size}` } } };
      const header: Record<string, string> = { chunk_size: String(this.chunkSize) };
      const n = Math.ceil(size / this.chunkSize);
      for (let i = 1; i <= n; i++) header[String(i).padStart(5, "0")] = `${this.storage}/part/${oid}/${i}`;
      return { oid, size, actions: { upload: { href: `${this.storage}/complete/${oid}/${size}`, header } } };
    });
    res
      .writeHead(200, { "content-type": "application/vnd.git-lfs+json", "x-request-id": "req-batch" })
      .end(JSON.stringify({ transfer: "basic", objects }));
  }

  /** Stores an object after checking it is what the batch call announced. */
  private store(res: ServerResponse, oid: string, size: number, content: Buffer): void {
    if (content.length !== size || sha256(content) !== oid) {
      this.fail(
        res,
        400,
        undefined,
        `object ${oid}: got ${content.length} bytes with sha256 ${sha256(content)}`,
      );
      return;
    }
    this.objects.set(oid, content);
    res.writeHead(200).end();
  }

  private handleStorage(req: WriteRequest, res: ServerResponse): void {
    this.onStorageRequest?.(req);
    if (this.storageStatus !== undefined) {
      res
        .writeHead(this.storageStatus, { "content-type": "application/xml" })
        .end("<Error>Request has expired</Error>");
      return;
    }
    const [kind, oid = "", arg = ""] = new URL(req.url, this.storage).pathname.split("/").slice(1);
    if (req.method === "PUT" && kind === "put") return this.store(res, oid, Number(arg), req.body);
    if (req.method === "PUT" && kind === "part") {
      const parts = this.parts.get(oid) ?? new Map<number, Buffer>();
      parts.set(Number(arg), req.body);
      this.parts.set(oid, parts);
      res.writeHead(200, { etag: `"${sha256(req.body).slice(0, 32)}"` }).end();
      return;
    }
    if (req.method === "POST" && kind === "complete") {
      const body = JSON.parse(req.body.toString("utf8")) as {
        oid: string;
        parts: { partNumber: number; etag: string }[];
      };
      const got = this.parts.get(oid) ?? new Map<number, Buffer>();
      const ordered: Buffer[] = [];
      for (const p of body.parts.sort((a, b) => a.partNumber - b.partNumber)) {
        const part = got.get(p.partNumber);
        if (!part || p.etag !== `"${sha256(part).slice(0, 32)}"`) {
          this.fail(res, 400, undefined, `part ${p.partNumber} of ${oid} missing or etag mismatch`);
          return;
        }
        ordered.push(part);
      }
      return this.store(res, oid, Number(arg), Buffer.concat(ordered));
    }
    res.writeHead(404).end();
  }

  private commit(req: WriteRequest, res: ServerResponse, repo: WriteRepo, rev: string): void {
    if (req.headers["content-type"] !== "application/x-ndjson") {
      this.fail(res, 400, undefined, "commit body must be application/x-ndjson");
      return;
    }
    if (this.conflictOnCommit) {
      this.conflictOnCommit = false;
      this.fail(res, 409, undefined, "A commit has happened since. Please refresh and try again.");
      return;
    }
    const lines = req.body
      .toString("utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
    const header = lines[0];
    if (header?.key !== "header") {
      this.fail(res, 400, undefined, "first line must be the header");
      return;
    }
    const parent = repo.refs[rev] ?? "";
    const files = new Map(repo.commits[parent]?.files);
    for (const { key, value } of lines.slice(1)) {
      const path = String(value.path);
      if (key === "file") {
        const content = Buffer.from(String(value.content), "base64");
        if (content.length >= LFS_THRESHOLD || content.includes(0)) {
          this.fail(res, 400, undefined, `Your push was rejected: ${path} must be stored with LFS`);
          return;
        }
        files.set(path, { content, lfs: false });
      } else if (key === "lfsFile") {
        const stored = this.objects.get(String(value.oid));
        if (!stored || stored.length !== value.size) {
          this.fail(res, 422, undefined, `LFS object ${String(value.oid)} for ${path} was never uploaded`);
          return;
        }
        files.set(path, { content: stored, lfs: true });
      } else if (key === "deletedFile") {
        files.delete(path);
      }
    }
    const sha = this.newSha(repo.id);
    repo.commits[sha] = { title: String(header.value.summary), files };
    repo.refs[rev] = sha;
    this.send(res, {
      commitOid: sha,
      commitUrl: `${this.endpoint}/${repo.id}/commit/${sha}`,
      hookOutput: "",
    });
  }
}
