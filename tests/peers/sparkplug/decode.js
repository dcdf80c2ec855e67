#!/usr/bin/env node
"use strict";
/*
 * Independent Sparkplug B decoder for the Python test-suite: Eclipse Tahu's npm
 * `sparkplug-payload` (EPL-2.0), used as a test peer only.
 *
 * Usage:  node tests/peers/sparkplug/decode.js < lines
 *
 * - Reads payloads from stdin, one per line, base64-encoded.
 * - Writes one JSON line per payload to stdout:
 *     {"decoded": <sparkplug-payload's decodePayload()>,
 *      "raw": <the protobuf message as protobufjs reads it: every field set, oneof named>}
 *   `decoded` is what an application on this library sees; it needs each metric's datatype,
 *   which data messages leave out, hence `raw` beside it.
 * - JSON cannot hold everything those carry, so: 64-bit integers (Long) are written as decimal
 *   strings, NaN and infinities as the strings "NaN", "Infinity", "-Infinity", bytes as base64.
 * - A line that is not a payload gives {"error": "<message>"}.
 *
 * Its modules are installed beside it (tests/peers/sparkplug/node_modules, by `make test`), or
 * found through NODE_PATH.
 */

const readline = require("readline");
const sparkplug = require("sparkplug-payload").get("spBv1.0");
const Long = require("long");
const proto = require("sparkplug-payload/lib/sparkplugPayloadProto");

const Payload = proto.org.eclipse.tahu.protobuf.Payload;

function plain(key, value) {
  if (value instanceof Long || (value && typeof value.low === "number" && typeof value.high === "number" && typeof value.unsigned === "boolean")) {
    return Long.fromBits(value.low, value.high, value.unsigned).toString();
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    return String(value);
  }
  if (value instanceof Uint8Array) {
    return Buffer.from(value).toString("base64");
  }
  if (value && value.type === "Buffer" && Array.isArray(value.data)) {
    return Buffer.from(value.data).toString("base64");
  }
  return value;
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (!line.trim()) {
    return;
  }
  let out;
  try {
    const bytes = Buffer.from(line.trim(), "base64");
    const decoded = sparkplug.decodePayload(bytes);
    const raw = Payload.toObject(Payload.decode(bytes), {
      longs: String,
      bytes: String,
      oneofs: true,
    });
    out = { decoded, raw };
  } catch (err) {
    out = { error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(out, plain) + "\n");
});
