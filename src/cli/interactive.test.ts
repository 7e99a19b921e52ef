/**
 * `lmx run` as an interactive chat on a real terminal (a pty from util-linux `script`):
 * commands, multi-line input, Ctrl-C stopping an answer, /bye and Ctrl-D exiting.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "lmx.js");
const hasScript = spawnSync("script", ["--version"]).status === 0;

/** Drives the REPL: waits for `expect` in the output before sending each input. */
async function session(
  args: string[],
  steps: { send: string; expect?: RegExp }[],
): Promise<{ out: string; code: number | null }> {
  const cmd = [process.execPath, bin, "run", ...args].map((a) => `'${a}'`).join(" ");
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, TERM: "dumb" },
  });
  let out = "";
  const waiters: (() => void)[] = [];
  child.stdout.on("data", (d) => {
    out += d.toString().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
    waiters.splice(0).forEach((w) => w());
  });
  const waitFor = (re: RegExp, from: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${out}`)), 60_000);
      const check = () => (re.test(out.slice(from)) ? (clearTimeout(timer), resolve()) : waiters.push(check));
      check();
    });
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  try {
    await waitFor(/>>> $/, 0);
    for (const s of steps) {
      const mark = out.length;
      child.stdin.write(s.send);
      if (s.expect) await waitFor(s.expect, mark);
    }
    return { out, code: await exited };
  } finally {
    child.kill("SIGKILL");
  }
}

describe("lmx run (interactive)", { skip: !hasScript && "util-linux script is not installed" }, () => {
  it("answers, runs commands, takes multi-line input and exits with /bye", async () => {
    const { out, code } = await session(
      ["--temperature", "0", "--num-predict", "6"],
      [
        { send: "/show info\r", expect: /architecture\s+qwen3[\s\S]*>>> $/ },
        { send: "/set parameter num_predict 4\r", expect: /Set parameter 'num_predict' to '4'[\s\S]*>>> $/ },
        { send: "hello there\r", expect: /\r?\n\r?\n>>> $/ },
        { send: '"""\rfirst line\rsecond line\r"""\r', expect: /\.\.\. [\s\S]*>>> $/ },
        { send: "/clear\r", expect: /Cleared session context[\s\S]*>>> $/ },
        { send: "/bye\r" },
      ],
    );
    assert.equal(code, 0, out);
  });

  it("Ctrl-C stops an answer and Ctrl-D exits", async () => {
    const { out, code } = await session(
      ["--temperature", "0", "--num-predict", "100000", "--num-ctx", "8192"],
      [
        { send: "write a very long story\r", expect: /story[\r\n]+[\s\S]{40,}/ },
        { send: "\x03", expect: />>> $/ },
        { send: "\x04" },
      ],
    );
    assert.equal(code, 0, out);
  });
});
