#!/usr/bin/env node
"use strict";
/*
 * Independent OPC UA test peer for the Python test-suite (node-opcua).
 *
 * Usage:  node tests/peers/opcua_server.js <port> <workdir>
 *
 * - Listens on 127.0.0.1:<port> (pass 0 to let the OS pick a free port).
 *   Endpoint URL: opc.tcp://127.0.0.1:<port>/UA/Peer
 * - Once listening, prints exactly one line "ready <port>" to stdout, where
 *   <port> is the port actually bound. Nothing else is ever written to stdout:
 *   node-opcua logs through console.log, so console.log/info/debug are sent to
 *   stderr before node-opcua is loaded.
 * - Exits with status 0 on SIGTERM / SIGINT (forced after 1.5 s at the latest).
 * - Exits non-zero (message on stderr, no "ready" line) if it cannot start,
 *   e.g. when the port is already in use (exit 1) or on bad arguments (exit 2).
 * - Start-up takes about 2-5 s (loading the standard nodeset; on a fresh
 *   workdir also generating two RSA keys), so wait generously for "ready".
 *
 * PKI: the server's own certificate and key live under <workdir>/pki
 * (own/certs/certificate.pem, own/private/private_key.pem), created on first
 * start and reused afterwards (so a restart with the same workdir keeps the
 * same certificate). Unknown client certificates are trusted automatically
 * (copied into <workdir>/pki/trusted/certs). User X509 tokens use a separate
 * store under <workdir>/pki/user (also auto-accepting).
 *
 * Endpoints (all on the one URL above):
 *   SecurityPolicy None                  MessageSecurityMode None
 *   SecurityPolicy Basic256Sha256        Sign, SignAndEncrypt
 *   SecurityPolicy Aes128_Sha256_RsaOaep SignAndEncrypt
 *   SecurityPolicy Aes256_Sha256_RsaPss  SignAndEncrypt
 * User identity: anonymous, or username "operator" / password "secret-pw".
 * On the None endpoint the password must be encrypted with the server
 * certificate (user token policies for Basic256Sha256 / Aes128_Sha256_RsaOaep);
 * plain-text passwords are not offered.
 *
 * Address space (namespace URI urn:edge-agent:test-peer, string NodeIds),
 * everything in folder "Press" (ns=<idx>;s=Press) under Objects; all
 * variables are read-only:
 *   Press.Temperature  Double   71.25
 *   Press.Running      Boolean  true
 *   Press.PartCount    UInt32   1000, +1 every 100 ms
 *   Press.Mode         String   "AUTO"
 *   Press.Pressure     Float    4.5
 *   Press.Alarm        Int16    -3
 *   Press.Serial       Int64    9007199254740993 (2^53 + 1)
 *   Press.Broken       Double   value 0, StatusCode BadSensorFailure
 *   Press.Doubtful     Double   1.5, StatusCode UncertainLastUsableValue
 *   NumericNode        Int32    42, NodeId ns=<idx>;i=5001
 * Namespace index 1 is the server's own application namespace, so
 * urn:edge-agent:test-peer is index 2.
 */

// node-opcua writes its diagnostics with console.log: keep stdout clean.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const fs = require("node:fs");
const path = require("node:path");

const HOST = "127.0.0.1";
const RESOURCE_PATH = "/UA/Peer";
const NAMESPACE_URI = "urn:edge-agent:test-peer";
const APPLICATION_URI = "urn:edge-agent:test-peer:server";

const USERS = Object.freeze({ operator: "secret-pw" });

// Enumerations as defined by the OPC UA specification (stable wire values).
const MessageSecurityMode = Object.freeze({ None: 1, Sign: 2, SignAndEncrypt: 3 });
const SP = "http://opcfoundation.org/UA/SecurityPolicy#";
const SecurityPolicy = Object.freeze({
    None: SP + "None",
    Basic256Sha256: SP + "Basic256Sha256",
    Aes128_Sha256_RsaOaep: SP + "Aes128_Sha256_RsaOaep",
    Aes256_Sha256_RsaPss: SP + "Aes256_Sha256_RsaPss",
});
const UserTokenType = Object.freeze({ Anonymous: 0, UserName: 1, Certificate: 2 });

function usage(message) {
    process.stderr.write(`${message}\nusage: node opcua_server.js <port> <workdir>\n`);
    process.exit(2);
}

const portArg = process.argv[2];
const workdirArg = process.argv[3];
if (portArg === undefined || workdirArg === undefined) {
    usage("missing argument");
}
if (!/^\d+$/.test(portArg) || Number(portArg) > 65535) {
    usage(`invalid port: ${portArg}`);
}
const PORT = Number(portArg);
const WORKDIR = path.resolve(workdirArg);

let server = null;
let started = false;
let partCountTimer = null;
let stopping = false;

function stop(signal) {
    if (stopping) {
        return;
    }
    stopping = true;
    process.stderr.write(`opcua peer: ${signal} received, shutting down\n`);
    if (partCountTimer) {
        clearInterval(partCountTimer);
    }
    if (!started) {
        // nothing is listening yet: no graceful shutdown needed
        process.exit(0);
    }
    const force = setTimeout(() => process.exit(0), 1500);
    force.unref();
    const done = (err) => {
        if (err) {
            process.stderr.write(`opcua peer: shutdown error: ${err.message || err}\n`);
        }
        process.exit(0);
    };
    try {
        server.shutdown(0).then(() => done(), done);
    } catch (err) {
        done(err);
    }
}

// Installed before node-opcua is loaded (loading takes about a second).
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

// node-opcua-secure-channel@2.182.x, when loaded on Node 20/21, runs a purely
// diagnostic self-test (verify_pcks1.js) that generates a 4096-bit RSA key in
// the libuv thread pool just to decide whether to print warning NODE-OPCUA-W27
// (RSA PKCS#1 v1.5 decryption is disabled by Node's CVE-2023-46809 fix; only
// Basic128Rsa15 needs it and it is not offered here). That key generation burns
// a core for 0.5-3 s and process.exit() waits for it, which delays exit on
// SIGTERM far beyond 2 s. Pre-seed the module cache with a no-op instead.
(function skipPkcs1SelfTest() {
    try {
        const Module = require("node:module");
        const file = path.join(path.dirname(require.resolve("node-opcua-secure-channel")), "verify_pcks1.js");
        if (fs.existsSync(file) && !require.cache[file]) {
            const stub = new Module(file, module);
            stub.filename = file;
            stub.loaded = true;
            stub.exports = { testRSAPKCS1V15_EncryptDecrypt: async () => undefined };
            require.cache[file] = stub;
        }
    } catch (err) {
        process.stderr.write(`opcua peer: cannot skip the PKCS#1 self-test: ${err.message}\n`);
    }
})();

const { OPCUAServer } = require("node-opcua-server");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");
const { DataType, Variant } = require("node-opcua-variant");
const { StatusCodes } = require("node-opcua-status-code");

function buildAddressSpace(addressSpace) {
    const ns = addressSpace.registerNamespace(NAMESPACE_URI);

    const press = ns.addFolder(addressSpace.rootFolder.objects, {
        nodeId: "s=Press",
        browseName: "Press",
    });

    function addVariable(name, dataType, value, statusCode, extra) {
        const variable = ns.addVariable({
            organizedBy: press,
            nodeId: `s=Press.${name}`,
            browseName: name,
            dataType,
            accessLevel: "CurrentRead",
            userAccessLevel: "CurrentRead",
            ...extra,
        });
        // arrayType is explicit: an Int64 scalar is itself a JS array [high, low].
        variable.setValueFromSource(
            new Variant({ dataType, arrayType: "Scalar", value }),
            statusCode || StatusCodes.Good
        );
        return variable;
    }

    addVariable("Temperature", DataType.Double, 71.25);
    addVariable("Running", DataType.Boolean, true);
    addVariable("Mode", DataType.String, "AUTO");
    addVariable("Pressure", DataType.Float, 4.5);
    addVariable("Alarm", DataType.Int16, -3);
    // node-opcua carries 64-bit integers as [high32, low32]: 2^53 + 1.
    addVariable("Serial", DataType.Int64, [0x00200000, 0x00000001]);
    addVariable("Broken", DataType.Double, 0, StatusCodes.BadSensorFailure);
    addVariable("Doubtful", DataType.Double, 1.5, StatusCodes.UncertainLastUsableValue);

    let partCount = 1000;
    const partCountVar = addVariable("PartCount", DataType.UInt32, partCount, null, {
        minimumSamplingInterval: 50,
    });
    partCountTimer = setInterval(() => {
        partCount = (partCount + 1) >>> 0;
        partCountVar.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: partCount }));
    }, 100);

    const numeric = ns.addVariable({
        organizedBy: press,
        nodeId: "i=5001",
        browseName: "NumericNode",
        dataType: DataType.Int32,
        accessLevel: "CurrentRead",
        userAccessLevel: "CurrentRead",
    });
    numeric.setValueFromSource(new Variant({ dataType: DataType.Int32, value: 42 }));

    return ns.index;
}

async function main() {
    fs.mkdirSync(WORKDIR, { recursive: true });
    const pkiDir = path.join(WORKDIR, "pki");

    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: pkiDir,
        automaticallyAcceptUnknownCertificate: true,
    });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pkiDir, "user"),
        automaticallyAcceptUnknownCertificate: true,
    });

    server = new OPCUAServer({
        port: PORT,
        host: HOST, // bind address
        hostname: HOST, // host part of the advertised endpoint URLs
        // An IP literal here only adds 127.0.0.1 to the certificate's
        // subjectAltName (same host as `hostname`, so no extra endpoints).
        alternateHostname: [HOST],
        resourcePath: RESOURCE_PATH,
        serverInfo: {
            applicationUri: APPLICATION_URI,
            productUri: "urn:edge-agent:test-peer:product",
            applicationName: { text: "edge-agent OPC UA test peer", locale: "en" },
        },
        buildInfo: { productName: "edge-agent OPC UA test peer" },
        serverCertificateManager,
        userCertificateManager,
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
        securityPolicies: [
            SecurityPolicy.None,
            SecurityPolicy.Basic256Sha256,
            SecurityPolicy.Aes128_Sha256_RsaOaep,
            SecurityPolicy.Aes256_Sha256_RsaPss,
        ],
        allowAnonymous: true,
        userManager: {
            isValidUser: (userName, password) =>
                Object.prototype.hasOwnProperty.call(USERS, userName) && USERS[userName] === password,
        },
        disableDiscovery: true,
    });

    await server.initialize();

    // Basic256Sha256 additionally offers Sign (the other policies only
    // SignAndEncrypt): one more description on the same listening endpoint.
    server.endpoints[0].addEndpointDescription(MessageSecurityMode.Sign, SecurityPolicy.Basic256Sha256, {
        hostname: HOST,
        resourcePath: RESOURCE_PATH,
        securityPolicies: [SecurityPolicy.Basic256Sha256],
        userTokenTypes: [UserTokenType.Anonymous, UserTokenType.UserName, UserTokenType.Certificate],
    });

    const nsIndex = buildAddressSpace(server.engine.addressSpace);

    await server.start();

    started = true;
    const port = server.endpoints[0].port;
    process.stderr.write(
        `opcua peer listening on opc.tcp://${HOST}:${port}${RESOURCE_PATH} ` +
            `(namespace ${NAMESPACE_URI} = ns ${nsIndex}, pki ${pkiDir})\n`
    );
    process.stdout.write(`ready ${port}\n`);
}

main().catch((err) => {
    process.stderr.write(`opcua peer: failed to start: ${(err && err.stack) || err}\n`);
    process.exit(1);
});
