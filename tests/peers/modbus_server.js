#!/usr/bin/env node
"use strict";
/*
 * Independent Modbus TCP test peer for the Python test-suite.
 *
 * Usage:  node tests/peers/modbus_server.js <port>
 *
 * - Listens on 127.0.0.1:<port> (pass 0 to let the OS pick a free port).
 * - Answers requests addressed to any unit id (the response echoes the unit id).
 * - Once listening, prints exactly one line "ready <port>" to stdout, where
 *   <port> is the port actually bound. Nothing else is ever written to stdout
 *   (diagnostics go to stderr).
 * - Exits with status 0 on SIGTERM / SIGINT.
 * - Serves fixed, never-changing data (see TABLES below). Reads touching an
 *   address outside a defined range answer Modbus exception 2 (Illegal Data
 *   Address), as modbus-serial itself decides it. The peer is read-only: every write
 *   (FC5/6/15/16) answers exception 2 if it touches an undefined address,
 *   otherwise exception 1 (Illegal Function). Other function codes answer
 *   exception 1, except that requests whose PDU (function code + data) is
 *   shorter than 3 bytes (e.g. FC7, FC11, FC12, FC17) are silently dropped
 *   by modbus-serial (no response at all).
 *
 * Implemented with modbus-serial's ServerTCP. Error mapping in that library:
 * when a vector callback throws (or returns a rejected promise / calls back
 * with an error), the server answers an exception response whose code is
 * `err.modbusErrorCode` if that is a number, else 4 (Server Device Failure).
 * So every error thrown here carries an explicit modbusErrorCode.
 */

const ServerTCP = require("modbus-serial").ServerTCP;

const HOST = "127.0.0.1";

const EXC_ILLEGAL_FUNCTION = 0x01;
const EXC_ILLEGAL_DATA_ADDRESS = 0x02;

// ---------------------------------------------------------------------------
// Fixed data, wire addresses (0-based). Array length == defined range.
// ---------------------------------------------------------------------------

function registers(size, assignments) {
    const out = new Array(size).fill(0);
    for (const [addr, value] of Object.entries(assignments)) {
        out[Number(addr)] = value;
    }
    return Object.freeze(out);
}

const TABLES = Object.freeze({
    // coils 0..15 (8..15 are all 0)
    coils: Object.freeze([1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    // discrete inputs 0..7
    discreteInputs: Object.freeze([0, 1, 0, 1, 1, 0, 1, 0]),
    // holding registers 0..39
    holding: registers(40, {
        0: 0xFB2E,                 // int16 -1234
        1: 0x075B, 2: 0xCD15,      // uint32 123456789, ABCD
        3: 0x4060, 4: 0x0000,      // float32 3.5, ABCD
        5: 0x0000, 6: 0xC144,      // float32 -12.25, CDAB (word-swapped)
        7: 0x5B07, 8: 0x15CD,      // uint32 123456789, BADC (bytes swapped in each word)
        10: 0x4009, 11: 0x21FB, 12: 0x5444, 13: 0x2D18, // float64 pi, ABCD
        20: 0x5052, 21: 0x4553, 22: 0x532D, 23: 0x3031, // ASCII "PRESS-01"
        30: 0x0005,                // bits 0 and 2 set
    }),
    // input registers 0..9
    input: registers(10, {
        0: 1000,
        1: 0x0001, 2: 0x86A0,      // uint32 100000, ABCD
        3: 0x41C8, 4: 0x0000,      // float32 25.0, ABCD
    }),
});

// ---------------------------------------------------------------------------
// Vector (callbacks used by modbus-serial's ServerTCP)
// ---------------------------------------------------------------------------

function modbusError(code, msg) {
    const err = new Error(msg);
    err.modbusErrorCode = code;
    return err;
}

function checkRange(table, name, address, count) {
    if (!Number.isInteger(address) || !Number.isInteger(count) || count < 1 ||
        address < 0 || address + count > table.length) {
        throw modbusError(EXC_ILLEGAL_DATA_ADDRESS,
            `${name} ${address}..${address + count - 1} outside 0..${table.length - 1}`);
    }
}

function readOne(table, name) {
    return function(address /* , unitID */) {
        checkRange(table, name, address, 1);
        return table[address];
    };
}

function readMany(table, name) {
    return function(address, length /* , unitID */) {
        checkRange(table, name, address, length);
        return table.slice(address, address + length);
    };
}

// Writes are rejected. modbus-serial calls setCoil / setRegister once per
// address, synchronously in a loop, and answers with the FIRST error reported.
// Out-of-range addresses are reported synchronously (exception 2) while
// in-range ones are reported on the next tick (exception 1), so a multi-write
// (FC15) that touches any undefined address answers exception 2.
function rejectWriteOne(table, name) {
    return function(address, value, unitID, callback) {
        try {
            checkRange(table, name, address, 1);
        } catch (err) {
            callback(err);
            return;
        }
        setImmediate(() => callback(modbusError(EXC_ILLEGAL_FUNCTION, `${name} are read-only`)));
    };
}

function rejectWriteMany(table, name) {
    return function(address, values /* , unitID */) {
        checkRange(table, name, address, values.length);
        throw modbusError(EXC_ILLEGAL_FUNCTION, `${name} are read-only`);
    };
}

// NB: modbus-serial picks the calling convention from Function.length:
// a getter with 3 declared parameters is treated as callback-style, so these
// synchronous getters declare fewer parameters.
const vector = {
    getCoil: readOne(TABLES.coils, "coils"),
    getDiscreteInput: readOne(TABLES.discreteInputs, "discrete inputs"),
    getHoldingRegister: readOne(TABLES.holding, "holding registers"),
    getInputRegister: readOne(TABLES.input, "input registers"),
    getMultipleHoldingRegisters: readMany(TABLES.holding, "holding registers"),
    getMultipleInputRegisters: readMany(TABLES.input, "input registers"),
    // Without setters modbus-serial would silently not answer writes; answer
    // with an exception instead so a client never hangs.
    setCoil: rejectWriteOne(TABLES.coils, "coils"),                 // FC5, FC15
    setRegister: rejectWriteOne(TABLES.holding, "holding registers"), // FC6
    setRegisterArray: rejectWriteMany(TABLES.holding, "holding registers"), // FC16
    // (setCoilArray deliberately not defined: in modbus-serial 8.0.25 that
    // path answers FC15 with success before calling the vector.)
};

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

function usage(msg) {
    process.stderr.write(`modbus_server: ${msg}\nusage: node modbus_server.js <port>\n`);
    process.exit(2);
}

function main(argv) {
    if (argv.length !== 1) usage("expected exactly one argument");
    if (!/^\d+$/.test(argv[0])) usage(`invalid port ${JSON.stringify(argv[0])}`);
    const port = Number(argv[0]);
    if (port > 65535) usage(`invalid port ${port}`);

    // unitID 255 (the library default) means "answer every unit id".
    // modbus-serial does `options.port || 502`, so a numeric 0 would silently
    // become 502; the string "0" is truthy and net.Server.listen() accepts it
    // as "pick a free port".
    const server = new ServerTCP(vector, { host: HOST, port: String(port), unitID: 255 });

    let shuttingDown = false;
    function shutdown(signal) {
        if (shuttingDown) return;
        shuttingDown = true;
        process.stderr.write(`modbus_server: ${signal}, shutting down\n`);
        // Never hang on close: force exit shortly after.
        setTimeout(() => process.exit(0), 1000).unref();
        server.close(() => process.exit(0));
    }
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));

    server.on("initialized", () => {
        const bound = server._server.address().port;
        // Exactly one line on stdout; exit-safe even if stdout is a pipe.
        process.stdout.write(`ready ${bound}\n`);
    });
    server.on("serverError", (err) => {
        process.stderr.write(`modbus_server: server error: ${err && err.message}\n`);
        process.exit(1);
    });
    // Client-side resets (ECONNRESET etc.) are normal in tests; just log them.
    server.on("socketError", (err) => {
        process.stderr.write(`modbus_server: socket error: ${err && err.message}\n`);
    });
    server.on("error", (err) => {
        process.stderr.write(`modbus_server: error: ${err && err.message}\n`);
    });
}

main(process.argv.slice(2));
