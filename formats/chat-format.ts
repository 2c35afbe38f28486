/**
 * Our tasks in a pretrained model's own chat format. A problem becomes a system message that says
 * the response format (T1's trial, reflection, check, final answer) and a user message with the
 * problem, rendered through the model's chat template; a trace becomes the assistant's reply, in
 * plain text, ended by the model's end-of-turn token. The methods mirror the character tokenizer's
 * (model/tokenizer.ts), so SFT, RL and evaluation read both the same way:
 *
 *   <|im_start|>system\n...format...<|im_end|>\n<|im_start|>user\n3 5 7 10 -> 22<|im_end|>\n<|im_start|>assistant\n
 *   try 7*5-10+3=28\nno: 28 != 22\ntry 7*5-3-10=22\nAnswer: 7*5-3-10\nchk 7*5-3-10=22 ok<|im_end|>
 *
 * The loss covers the assistant's tokens and the end token only. Prompt and reply are tokenized
 * apart, as generation produces them (the reply continues the prompt's last token).
 */
import type { Example, ParsedResponse, Trace } from '../model/tokenizer';
import type { PretrainedTokenizer } from './tokenizer';

/** Where the final answer starts, on a line of its own; what the scaling sweep appends to a cut reasoning. */
export const CHAT_ANSWER_CUE = 'Answer: ';

export const CHAT_SYSTEM_PROMPT = [
  'Solve the problem by trial and error, then check your answer.',
  'Write each attempt on a line starting with "try ", and after a wrong one a line starting with "no: " that says why it fails.',
  `When an attempt works, write the final answer on a line starting with "${CHAT_ANSWER_CUE}", then a line starting with "chk " that checks it and ends with "ok".`,
].join('\n');

export class ChatFormat {
  constructor(
    readonly tokenizer: PretrainedTokenizer,
    readonly system = CHAT_SYSTEM_PROMPT,
  ) {
    if (!tokenizer.chatTemplate) throw new Error('chat format: the model has no chat template');
  }

  /** The model's input for a problem: system and user turns and the assistant's header. */
  encodePrompt(problem: string): number[] {
    const text = this.tokenizer.renderChat(
      [
        { role: 'system', content: this.system },
        { role: 'user', content: problem },
      ],
      { addGenerationPrompt: true },
    );
    return this.tokenizer.encode(text);
  }

  /** The assistant's reply for a trace: reasoning, the answer line, the check. */
  replyText(t: Pick<Trace, 'reasoning' | 'answer' | 'verification'>): string {
    const reasoning = t.reasoning.endsWith('\n') || t.reasoning === '' ? t.reasoning : `${t.reasoning}\n`;
    return `${reasoning}${CHAT_ANSWER_CUE}${t.answer}${t.verification}`;
  }

  buildExample(t: Trace): Example {
    const prompt = this.encodePrompt(t.prompt);
    const reply = [...this.tokenizer.encode(this.replyText(t)), this.tokenizer.eosId];
    return { tokens: [...prompt, ...reply], lossMask: [...prompt.map(() => 0), ...reply.map(() => 1)] };
  }

  /** Generated ids (after the prompt) split at the end token and at the first answer line. */
  parseResponse(ids: ArrayLike<number>): ParsedResponse {
    const all = Array.from(ids);
    const end = all.indexOf(this.tokenizer.eosId);
    const text = this.tokenizer.decode(end < 0 ? all : all.slice(0, end), { skipSpecial: true });
    const at = text.startsWith(CHAT_ANSWER_CUE) ? 0 : text.indexOf(`\n${CHAT_ANSWER_CUE}`);
    if (at < 0) return { reasoning: text, answer: null, stopped: end >= 0 };
    const start = at === 0 ? 0 : at + 1;
    return { reasoning: text.slice(0, start), answer: text.slice(start + CHAT_ANSWER_CUE.length), stopped: end >= 0 };
  }
}
