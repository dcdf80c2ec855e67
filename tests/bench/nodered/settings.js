// Node-RED settings for tests/bench/bench_cpu.py: headless (no editor, no admin API, no HTTP
// nodes, no listening socket), quiet, nothing fetched from the network. The benchmark passes
// every per-run value in the environment: NODE_RED_FLOW_FILE (a copy of flow.json in the run's
// temporary userDir) and the ${...} variables that flow.json uses.
module.exports = {
    flowFile: process.env.NODE_RED_FLOW_FILE,
    flowFilePretty: true,
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    logging: { console: { level: "warn", metrics: false, audit: false } },
    functionExternalModules: false,
    functionGlobalContext: {},
    exportGlobalContextKeys: false,
    editorTheme: { projects: { enabled: false } },
};
