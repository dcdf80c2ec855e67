#!/usr/bin/env node
"use strict";
/*
 * Independent FINS client (npm omron-fins, MIT) for the Python test-suite: it reads from our
 * simulated PLC, proving the simulator speaks FINS as another implementation understands it.
 *
 * Usage:  node tests/peers/fins_client.js <udp|tcp> <port> <DA1|-> '<json commands>'
 *
 * Commands: a JSON list of ["read", address, count], ["readMultiple", "D0,CIO0.01"] or
 * ["write", address, [values]]. Prints one JSON line: a list with one object per command,
 * {command, error, endCode, values, hex} (hex: the response data bytes), in order.
 * Exits 0 when every command got an answer (whatever its end code), 1 otherwise.
 */

const fins = require("omron-fins");

const [protocol, port, da1, commandsJson] = process.argv.slice(2);
const commands = JSON.parse(commandsJson);
const options = { protocol: protocol, timeout: 3000, autoConnect: false };
if (da1 !== "-") {
    options.DA1 = Number(da1);
}

const client = fins.FinsClient(Number(port), "127.0.0.1", options);
const results = [];

function finish(code) {
    process.stdout.write(JSON.stringify(results) + "\n");
    client.disconnect();
    process.exit(code);
}

function run(index) {
    if (index >= commands.length) {
        finish(0);
        return;
    }
    const [name, ...args] = commands[index];
    const callback = (err, msg) => {
        const response = (msg && msg.response) || {};
        results.push({
            command: commands[index],
            error: err ? String(err.message || err) : null,
            timeout: Boolean(msg && msg.timeout),
            endCode: response.endCode === undefined ? null : response.endCode,
            values: response.values === undefined ? null : response.values,
            hex: response.buffer ? Buffer.from(response.buffer).toString("hex") : null,
        });
        run(index + 1);
    };
    if (name === "read") {
        client.read(args[0], args[1], callback);
    } else if (name === "readMultiple") {
        client.readMultiple(args[0], callback);
    } else if (name === "write") {
        client.write(args[0], args[1], callback);
    } else {
        results.push({ command: commands[index], error: "unknown command" });
        finish(1);
    }
}

client.on("error", (err) => {
    process.stderr.write(`omron-fins error: ${err && err.message ? err.message : err}\n`);
});
// omron-fins marks itself connected just after emitting "open".
client.on("open", () => setImmediate(() => run(0)));
setTimeout(() => finish(1), 15000).unref();
client.connect();
