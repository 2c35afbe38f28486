/**
 * Strings for tokenizer parity checks: what trips BPE pre-tokenizers up (whitespace runs, digits,
 * contractions, code, every script and emoji shape, special-token text), written out, plus seeded
 * random mixes of the same pieces.
 */
import { Prng } from '../../../util/prng';

export const HAND_WRITTEN: string[] = [
  // empty and whitespace only
  '',
  ' ',
  '  ',
  '   ',
  '\t',
  '\n',
  '\n\n',
  '\n\n\n',
  '\r\n',
  '\t\n',
  ' \t \n ',
  '        ',
  // whitespace around words
  'Hello world',
  ' Hello world',
  'Hello world ',
  '  Hello  world  ',
  'Hello\tworld',
  'Hello\t\tworld',
  'Hello\nworld',
  'Hello\n\nworld\n',
  'Hello\r\nworld\r\n',
  '\n\nHello',
  'line one\n  indented two\n\tthree\n',
  'trailing spaces   \nnext',
  'a b  c   d    e     f',
  // digits and numbers
  '0',
  '7',
  '42',
  '1234567890',
  '3.14159',
  '-273.15',
  '1,000,000',
  '1e-9',
  '0x1F',
  '2024-06-01T12:34:56Z',
  '12345678901234567890123456789012345678901234567890',
  ' 123 4567 89',
  '17 + 25 = 42',
  '17+25=42',
  '(12 - 5) * 3 = 21',
  '2^10 = 1024, 7/8 = 0.875, 10% of 250 is 25.',
  'x = 3y + 4; y = 1.5 => x = 8.5',
  '#1 #22 #333 v1.2.3 a1b2c3',
  // prose, punctuation, contractions
  "it's",
  "we'll",
  "I'm sure they're right, but you've heard what he'd say: don't.",
  "IT'S WE'LL THEY'RE I'M YOU'VE HE'D",
  "rock 'n' roll, 'quoted', \"double\", the '90s",
  'Wait... what?! Really?!?',
  'Hello, world! How are you?',
  'e.g. i.e. etc. Mr. Smith vs. Dr. Jones',
  'The quick brown fox jumps over the lazy dog.',
  'semi;colon:colon—em-dash–en-dash…ellipsis',
  '«guillemets» „Anführung“ “curly” ‘single’',
  'email: someone@example.com, url: https://example.com/path?q=1&r=2#frag',
  // code
  'def add(a, b):\n    return a + b\n',
  'for i in range(10):\n\tprint(i ** 2)',
  'const f = (x) => x * 2;\nconsole.log(f(21));',
  'if (a !== b && c >= d || !e) { return; }',
  '{"key": "value", "n": [1, 2, 3], "nested": {"ok": true, "none": null}}',
  '<div class="a">Hi &amp; bye</div>',
  'SELECT id, name FROM users WHERE age > 30 ORDER BY name;',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); }',
  '$ ls -la | grep "*.ts" > out.txt 2>&1',
  '    indented    code    with    spaces',
  '```python\nprint("hi")\n```',
  '// comment\n/* block */\n# hash\n-- sql',
  '@decorator\nclass A(B):\n    pass',
  'a[i][j] += b[k] << 2 >> 1 ^ ~c',
  // accents, combining marks, other scripts
  'café naïve résumé façade',
  'cafe\u0301 nai\u0308ve',
  'e\u0301\u0302\u0303 a\u0323\u0307',
  'Straße, Grüße, Äpfel, Öl, Übermut',
  'Ærø, Ångström, Øresund, Łódź, Çà',
  'Привет, как дела? Съешь же ещё этих мягких французских булок.',
  'Γειά σου κόσμε. Ελληνικά',
  'مرحبا بالعالم. اللغة العربية',
  'שלום עולם',
  'नमस्ते दुनिया। हिन्दी भाषा',
  'สวัสดีชาวโลก',
  '你好，世界。中文文本测试。',
  'こんにちは世界。カタカナとひらがな、漢字。',
  '안녕하세요 세계. 한국어 텍스트.',
  'ᚠᛇᚻ᛫ᛒᛦᚦ ⠓⠑⠇⠇⠕ ꦲꦏ꧀ꦱꦫ',
  'ℌ𝔢𝔩𝔩𝔬 𝕎𝕠𝕣𝕝𝕕 𝓗𝓮𝓵𝓵𝓸',
  '١٢٣ ٤٥٦ ۷۸۹ १२३ ๑๒๓ ０１２３ ½ ¾ ²³ Ⅻ ⅻ',
  '∑ x² ≤ ∞, α + β = γ, ∀x ∃y: x ≠ y, √2 ≈ 1.414',
  '€100 £50 ¥1000 ₹500 $20 ¢5',
  '©®™ §¶ †‡ •· ° ±×÷',
  // emoji: single, skin tones, ZWJ sequences, flags, keycaps
  '🚀',
  '🚀🎉🔥',
  'I ❤️ this 😂😂😂',
  '👍🏽 👋🏿 🧑🏻‍🦰',
  '👨‍👩‍👧‍👦 family',
  '👩‍💻 👨‍🚀 🏳️‍🌈 🏴‍☠️',
  '🇫🇷🇩🇪🇯🇵 🇺🇸',
  '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
  '1️⃣ #️⃣ *️⃣',
  'text🙂text🙃text',
  // unusual whitespace and invisible characters
  'non\u00a0breaking\u00a0space',
  'thin\u2009space and\u3000ideographic',
  'zero\u200bwidth\u200cjoiner\u200dhere',
  '\ufeffBOM at start',
  'next\u0085line',
  '!\u0085 x \u0085y',
  '!\ufeff x\ufeffy',
  'line\u2028separator\u2029para',
  'tab\u000bvtab\u000cformfeed',
  'ctrl\u0001\u0002\u001f',
  'soft\u00adhyphen',
  'right\u200fto\u200eleft',
  // special-token text (encode parses it; see the test)
  '<|im_start|>',
  '<|im_end|>',
  '<|endoftext|>',
  '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n',
  '<|im_start|>system\nYou are helpful.<|im_end|>',
  'x<|im_end|>y',
  ' <|im_start|> ',
  '<|im_end|><|im_end|><|im_start|>',
  '<|im_start|><|im_start|>user',
  '<|im_start',
  'im_start|>',
  '< |im_start| >',
  '<|IM_START|>',
  '<|im_start|\u200b>',
  '<repo_name>t1<file_sep>a.ts<filename>b.ts',
  '<jupyter_code>print(1)<jupyter_output>1<empty_output>',
  '<|unknown_token|> <s> </s> [INST]',
];

/** Long strings: a page of prose, digits, whitespace and emoji runs. */
export function longStrings(): string[] {
  const prose =
    'In the spring of 1887, the river rose higher than anyone in the valley could remember. Farmers moved their cattle to the hills, and ' +
    "the schoolhouse became a shelter for forty families. It's the only record we've got of how the town organised itself.\n\n";
  return [
    prose.repeat(40),
    '1234567890'.repeat(100),
    ' '.repeat(1000) + 'x',
    '\n'.repeat(300),
    '\t '.repeat(200),
    '🚀'.repeat(300),
    '👨‍👩‍👧‍👦'.repeat(50),
    'a'.repeat(2000),
    'ab'.repeat(1000),
    'ñ'.repeat(500),
    '中文'.repeat(500),
    '<|im_start|>user\n' + prose.repeat(5) + '<|im_end|>\n',
  ];
}

const WORDS = [
  'the',
  'The',
  'model',
  'tokenizer',
  ' hello',
  'world',
  "it's",
  "we'll",
  "don't",
  'HTTP',
  'camelCase',
  'snake_case',
  'kebab-case',
  'café',
  'Straße',
  'naïve',
  'Привет',
  'мир',
  'Γειά',
  'مرحبا',
  'नमस्ते',
  '你好',
  '世界',
  'こんにちは',
  'カタカナ',
  '안녕',
  'ไทย',
];
const NUMBERS = ['0', '7', '42', '1234', '3.14', '-1', '1e6', '100000', '٣٤', '½', '²'];
const PUNCT = [
  '.',
  ',',
  '!',
  '?',
  '...',
  ';',
  ':',
  '-',
  '—',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  '"',
  "'",
  '`',
  '=',
  '+',
  '*',
  '/',
  '\\',
  '<',
  '>',
  '|',
  '&',
  '#',
  '@',
  '$',
  '%',
  '^',
  '~',
  '_',
];
const EMOJI = ['🚀', '🎉', '😂', '👍🏽', '👨‍👩‍👧', '🇫🇷', '🏳️‍🌈', '❤️', '1️⃣'];
const SPECIAL = ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<repo_name>'];
const SEPARATORS = ['', ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', ' \n', '\r\n', '\u00a0', '\u3000'];
const MARKS = ['\u0301', '\u0308', '\u0323', '\u0651', '\u093e'];
/** Code point ranges of assigned characters, for random single characters. */
const RANGES: [number, number][] = [
  [0x21, 0x7e],
  [0xa1, 0xff],
  [0x100, 0x17f],
  [0x391, 0x3c9],
  [0x410, 0x44f],
  [0x5d0, 0x5ea],
  [0x621, 0x64a],
  [0x905, 0x939],
  [0xe01, 0xe2e],
  [0x3041, 0x3096],
  [0x30a1, 0x30fa],
  [0x4e00, 0x9fa5],
  [0xac00, 0xd7a3],
  [0x2200, 0x22ff],
  [0x1f600, 0x1f64f],
];

/** `count` seeded random mixes of words, numbers, punctuation, emoji, marks, special tokens and separators. */
export function generatedStrings(count: number, seed = 20240601): string[] {
  const rng = new Prng(seed);
  const randomChar = (): string => {
    const [lo, hi] = rng.pick(RANGES);
    return String.fromCodePoint(lo + rng.int(hi - lo + 1));
  };
  const piece = (): string => {
    const r = rng.next();
    if (r < 0.35) return rng.pick(WORDS);
    if (r < 0.5) return rng.pick(NUMBERS);
    if (r < 0.65) return rng.pick(PUNCT);
    if (r < 0.72) return rng.pick(EMOJI);
    if (r < 0.77) return rng.pick(SPECIAL);
    if (r < 0.82) return rng.pick(WORDS) + rng.pick(MARKS);
    if (r < 0.9) return String(rng.int(10 ** (1 + rng.int(9))));
    return Array.from({ length: 1 + rng.int(6) }, randomChar).join('');
  };
  return Array.from({ length: count }, () => {
    const n = 1 + rng.int(rng.next() < 0.2 ? 60 : 12);
    let s = rng.next() < 0.15 ? rng.pick(SEPARATORS) : '';
    for (let i = 0; i < n; i++) s += (i > 0 ? rng.pick(SEPARATORS) : '') + piece();
    return s + (rng.next() < 0.15 ? rng.pick(SEPARATORS) : '');
  });
}

/** The parity corpus: hand-written, long and generated strings. */
export function tokenizerCorpus(): string[] {
  return [...HAND_WRITTEN, ...longStrings(), ...generatedStrings(240)];
}
