// What every encoder's config.json reader shares: the error that names the file and the key, a bounded read that
// never quotes the file, and the model_type check. BERT's names (BertConfigError) are kept: the other encoders
// reuse BERT's error so callers catch one type.
import { FileReadError, jsonSyntaxDetail, readRegularText } from "../util/read-file.ts";

/** A config.json that is not a valid BERT config; the message names the file and the key. */
export class BertConfigError extends Error {
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    detail: string,
  ) {
    super(key === undefined ? `${file}: ${detail}` : `${file}: "${key}" ${detail}`);
    this.name = "BertConfigError";
  }
}

/**
 * Reads and parses a config.json: a bounded read of a regular file, errors that name the file and never quote it.
 */
export function readConfigJson(path: string): unknown {
  let text: string;
  try {
    text = readRegularText(path, "config");
  } catch (e) {
    const detail = e instanceof FileReadError ? e.detail : (e as Error).message;
    throw new BertConfigError(path, undefined, `cannot be read (${detail})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // Never quote the file: V8's message starts with its first bytes.
    throw new BertConfigError(path, undefined, `is not valid JSON (${jsonSyntaxDetail(e, text)})`);
  }
}

/** config.json as an object with the expected model_type (a missing model_type is accepted). */
export function configObject(
  json: unknown,
  file: string,
  modelTypes: readonly string[],
): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new BertConfigError(file, undefined, "expected a JSON object");
  const obj = json as Record<string, unknown>;
  if (obj.model_type !== undefined && !modelTypes.includes(obj.model_type as string))
    throw new BertConfigError(
      file,
      "model_type",
      `is ${JSON.stringify(obj.model_type)}, expected ${modelTypes.map((t) => JSON.stringify(t)).join(" or ")}`,
    );
  return obj;
}
