/** Renders a model's Jinja chat template (Hugging Face semantics) into a prompt string. */
import { Template } from "@huggingface/jinja";

export interface ToolCall {
  function: { name: string; arguments: Record<string, unknown> };
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  thinking?: string;
  tool_calls?: ToolCall[];
  tool_name?: string;
}

export interface RenderOptions {
  tools?: unknown[];
  addGenerationPrompt?: boolean;
  /** false asks thinking models to answer directly (Qwen3's enable_thinking). */
  think?: boolean;
  bosToken?: string;
  eosToken?: string;
}

/** ChatML, for models that ship no template. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export class ChatTemplate {
  private readonly tmpl: Template;

  constructor(readonly source: string) {
    try {
      this.tmpl = new Template(source);
    } catch (e) {
      throw new Error(`the model's chat template does not parse: ${(e as Error).message}`);
    }
  }

  render(messages: readonly ChatMessage[], o: RenderOptions = {}): string {
    const ctx: Record<string, unknown> = {
      messages,
      add_generation_prompt: o.addGenerationPrompt ?? true,
      bos_token: o.bosToken ?? "",
      eos_token: o.eosToken ?? "",
    };
    if (o.tools?.length) ctx.tools = o.tools;
    if (o.think !== undefined) ctx.enable_thinking = o.think;
    return this.tmpl.render(ctx);
  }
}
