/**
 * The coding agents `lmx launch` can start, and how each is pointed at lmx: config files it
 * reads (merged, keeping the user's own entries), environment variables, or arguments.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { ConfigFiles } from "./config-files.js";

export interface LaunchContext {
  /** The server's root URL, e.g. http://127.0.0.1:11434 */
  baseUrl: string;
  model: string;
  contextWindow: number;
  capabilities: string[];
  home?: string;
}

export interface LaunchPlan {
  files: { path: string; content: string }[];
  env: Record<string, string>;
  args: string[];
}

export interface Integration {
  name: string;
  description: string;
  /** The executable to run. */
  binary: string;
  /** How to install it. */
  install: string;
  plan(c: LaunchContext): LaunchPlan;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
const home = (c: LaunchContext) => c.home ?? homedir();

const pi: Integration = {
  name: "pi",
  description: "pi coding agent (OpenAI chat completions)",
  binary: "pi",
  install: "npm install -g @mariozechner/pi-coding-agent",
  plan(c) {
    const dir = process.env.PI_CODING_AGENT_DIR || join(home(c), ".pi", "agent");
    const modelsPath = join(dir, "models.json");
    const models = ConfigFiles.readJson(modelsPath) as {
      providers?: Record<string, { models?: { _launch?: boolean; id?: string }[] }>;
    };
    const providers = { ...(models.providers ?? {}) };
    const theirs = (providers.lmx?.models ?? []).filter((m) => !m._launch && m.id !== c.model);
    providers.lmx = {
      ...providers.lmx,
      baseUrl: `${c.baseUrl}/v1`,
      api: "openai-completions",
      apiKey: "lmx",
      models: [
        ...theirs,
        {
          id: c.model,
          name: c.model,
          _launch: true,
          input: ["text"],
          reasoning: c.capabilities.includes("thinking"),
          contextWindow: c.contextWindow,
          // A reply may take a quarter of the context, leaving the rest to the transcript.
          maxTokens: Math.min(32768, Math.floor(c.contextWindow / 4)),
        },
      ],
    } as never;
    const settingsPath = join(dir, "settings.json");
    const settings = ConfigFiles.readJson(settingsPath);
    return {
      files: [
        { path: modelsPath, content: json({ ...models, providers }) },
        { path: settingsPath, content: json({ ...settings, defaultProvider: "lmx", defaultModel: c.model }) },
      ],
      env: {},
      args: [],
    };
  },
};

const claude: Integration = {
  name: "claude",
  description: "Claude Code (Anthropic messages API)",
  binary: "claude",
  install: "npm install -g @anthropic-ai/claude-code",
  plan(c) {
    return {
      files: [],
      env: {
        ANTHROPIC_BASE_URL: c.baseUrl,
        ANTHROPIC_API_KEY: "",
        ANTHROPIC_AUTH_TOKEN: "lmx",
        ANTHROPIC_DEFAULT_OPUS_MODEL: c.model,
        ANTHROPIC_DEFAULT_SONNET_MODEL: c.model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: c.model,
        CLAUDE_CODE_SUBAGENT_MODEL: c.model,
        CLAUDE_CODE_ATTRIBUTION_HEADER: "0",
        DISABLE_ERROR_REPORTING: "1",
        DISABLE_TELEMETRY: "1",
        CLAUDE_CODE_AUTO_COMPACT_WINDOW: String(c.contextWindow),
      },
      args: ["--model", c.model],
    };
  },
};

const codex: Integration = {
  name: "codex",
  description: "OpenAI Codex CLI (Responses API)",
  binary: "codex",
  install: "npm install -g @openai/codex",
  plan(c) {
    // Everything through -c overrides: the user's ~/.codex/config.toml is not touched.
    const o = (k: string, v: string | number) => [
      "-c",
      `${k}=${typeof v === "number" ? v : JSON.stringify(v)}`,
    ];
    return {
      files: [],
      env: { LMX_API_KEY: "lmx" },
      args: [
        ...o("model_provider", "lmx"),
        ...o("model_providers.lmx.name", "lmx"),
        ...o("model_providers.lmx.base_url", `${c.baseUrl}/v1`),
        ...o("model_providers.lmx.wire_api", "responses"),
        ...o("model_providers.lmx.env_key", "LMX_API_KEY"),
        ...o("model_context_window", c.contextWindow),
        "-m",
        c.model,
      ],
    };
  },
};

const opencode: Integration = {
  name: "opencode",
  description: "opencode (OpenAI-compatible provider)",
  binary: "opencode",
  install: "npm install -g opencode-ai",
  plan(c) {
    const config = {
      $schema: "https://opencode.ai/config.json",
      provider: {
        lmx: {
          npm: "@ai-sdk/openai-compatible",
          name: "lmx",
          options: { baseURL: `${c.baseUrl}/v1`, apiKey: "lmx" },
          models: {
            [c.model]: {
              name: c.model,
              limit: { context: c.contextWindow, output: Math.min(32768, Math.floor(c.contextWindow / 2)) },
            },
          },
        },
      },
      model: `lmx/${c.model}`,
    };
    return { files: [], env: { OPENCODE_CONFIG_CONTENT: JSON.stringify(config) }, args: [] };
  },
};

const droid: Integration = {
  name: "droid",
  description: "Factory droid (generic chat-completions models)",
  binary: "droid",
  install: "curl -fsSL https://app.factory.ai/cli | sh",
  plan(c) {
    const path = join(home(c), ".factory", "settings.json");
    const s = ConfigFiles.readJson(path) as {
      customModels?: { id?: string }[];
      sessionDefaultSettings?: Record<string, unknown>;
    };
    const theirs = (s.customModels ?? []).filter((m) => !String(m.id ?? "").startsWith("custom:lmx-"));
    const id = `custom:lmx-${c.model.replace(/[^\w.-]/g, "-")}`;
    const mine = {
      model: c.model,
      displayName: `${c.model} (lmx)`,
      baseUrl: `${c.baseUrl}/v1`,
      apiKey: "lmx",
      provider: "generic-chat-completion-api",
      maxOutputTokens: Math.min(32768, Math.floor(c.contextWindow / 2)),
      supportsImages: false,
      id,
      index: theirs.length,
    };
    return {
      files: [
        {
          path,
          content: json({
            ...s,
            customModels: [...theirs, mine],
            sessionDefaultSettings: { ...s.sessionDefaultSettings, model: id, reasoningEffort: "none" },
          }),
        },
      ],
      env: {},
      args: [],
    };
  },
};

export const INTEGRATIONS: readonly Integration[] = [pi, claude, codex, opencode, droid];

export function integration(name: string): Integration | undefined {
  return INTEGRATIONS.find((i) => i.name === name);
}
