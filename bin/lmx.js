#!/usr/bin/env -S node --max-semi-space-size=1
// V8's young generation capped at 1 MiB, as lmx serve's runners have it (RUNNER_V8_FLAGS):
// lmx's JavaScript holds little per token, and the default semi-spaces grow to several
// MiB beside the model.
import("../dist/cli/main.js").then((m) => m.main(process.argv.slice(2)));
