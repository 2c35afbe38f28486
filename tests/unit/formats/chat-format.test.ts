/** Tasks in a pretrained model's chat format, on SmolLM2's real tokenizer and template (read from the GGUF header only). */
import { beforeAll, describe, expect, it } from 'vitest';
import { CHAT_ANSWER_CUE, CHAT_SYSTEM_PROMPT, ChatFormat } from '../../../formats/chat-format';
import { openPretrained } from '../../../formats/pretrained';
import { smolLm2Gguf } from '../../../infra/models';

let chat: ChatFormat;
beforeAll(async () => {
  chat = new ChatFormat(openPretrained(await smolLm2Gguf()).tokenizer);
}, 300_000);

const trace = {
  prompt: '3 5 7 10 -> 22',
  reasoning: 'try 7*5-10+3=28\nno: 28 != 22\ntry 7*5-3-10=22\n',
  answer: '7*5-3-10',
  verification: '\nchk 7*5-3-10=22 ok',
};

describe('chat format', () => {
  it('renders a problem as system and user turns through the model’s ChatML template, ending with the assistant header', () => {
    const text = chat.tokenizer.decode(chat.encodePrompt(trace.prompt));
    expect(text).toBe(
      `<|im_start|>system\n${CHAT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n3 5 7 10 -> 22<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('builds an SFT example: the prompt, then the reply and the end token, with the loss on the reply and the end token only', () => {
    const prompt = chat.encodePrompt(trace.prompt);
    const ex = chat.buildExample(trace);
    expect(ex.tokens.slice(0, prompt.length)).toEqual(prompt);
    const reply = ex.tokens.slice(prompt.length);
    expect(reply[reply.length - 1]).toBe(chat.tokenizer.eosId);
    expect(chat.tokenizer.decode(reply)).toBe(
      'try 7*5-10+3=28\nno: 28 != 22\ntry 7*5-3-10=22\nAnswer: 7*5-3-10\nchk 7*5-3-10=22 ok<|im_end|>',
    );
    expect(ex.lossMask).toEqual([...prompt.map(() => 0), ...reply.map(() => 1)]);
  });

  it('reads a generated reply back: reasoning, the answer line with its check, and whether it ended', () => {
    const reply = chat.buildExample(trace).tokens.slice(chat.encodePrompt(trace.prompt).length);
    expect(chat.parseResponse(reply)).toEqual({
      reasoning: trace.reasoning,
      answer: `${trace.answer}${trace.verification}`,
      stopped: true,
    });
    // Cut before its end: not stopped. Without an answer line: no answer.
    expect(chat.parseResponse(reply.slice(0, -1)).stopped).toBe(false);
    const noAnswer = chat.tokenizer.encode('try 1+2=3\nno: wrong\n');
    expect(chat.parseResponse(noAnswer)).toEqual({ reasoning: 'try 1+2=3\nno: wrong\n', answer: null, stopped: false });
    // Only a line that starts with the cue is the answer; text after the end token is ignored.
    const inline = chat.tokenizer.encode(`the ${CHAT_ANSWER_CUE}is 5\n${CHAT_ANSWER_CUE}5`);
    expect(chat.parseResponse([...inline, chat.tokenizer.eosId, ...chat.tokenizer.encode('junk')])).toEqual({
      reasoning: `the ${CHAT_ANSWER_CUE}is 5\n`,
      answer: '5',
      stopped: true,
    });
  });
});
