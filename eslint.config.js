// House rules checked in `npm test` (npm run lint): the type-aware promise rules catch a floating
// activity, signal or S3 call, which otherwise fails silently or crashes a worker later.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

// The workflow sandbox's boundary. Workers bundle workflows/ with everything it imports, and the
// bundle must stay deterministic and load without tfjs or Node: workflows/, rules/ and contracts/
// entirely, and in the folders below only the files named (config-like: zod schemas, constants).
// Those files may import no tfjs, no Node builtin, nothing of the folders that run the work, and of
// the folders below only their named files; `import type` of anything else in model/, rl/,
// training/, tasks/, config/, util/, evaluation/ and storage/ is allowed (erased, never
// bundled). README.md's Layout table states the folder directions; tests/unit/architecture checks them
// and follows the bundle's real imports.
const SANDBOX_FILES = {
  config: ['campaign', 'search-attributes'],
  model: ['config', 'lora-config', 'llama-config', 'tokenizer'],
  rl: ['config'],
  training: ['sft-config', 'adamw-config'],
  tasks: ['config', 'types', 'hash', 'teacher-prompt'],
  reproduce: ['plan', 'records'],
  util: ['errors'],
};
const SANDBOX_FOLDERS = ['workflows', 'rules', 'contracts'];

const unsafe = 'not workflow-safe (the sandbox boundary in eslint.config.js)';
const others = (files) => `(?!(?:${files.join('|')})$)`;
const sandboxRule = (siblings) => [
  'error',
  {
    paths: builtinModules.filter((m) => !m.startsWith('_')).map((name) => ({ name, message: `Node builtins are ${unsafe}` })),
    patterns: [
      { group: ['node:*'], message: `Node builtins are ${unsafe}` },
      { group: ['@tensorflow/*'], message: `tfjs is ${unsafe}` },
      {
        regex: '(^|/)(cli|workers|infra|client|activities|bench|chaos|report|formats|external|tests)/',
        caseSensitive: true,
        message: `that folder is ${unsafe}`,
      },
      {
        regex: '(^|/)(storage|evaluation)/',
        caseSensitive: true,
        allowTypeImports: true,
        message: `only types of that folder may be imported here: its code is ${unsafe}`,
      },
      ...Object.entries(SANDBOX_FILES).map(([folder, files]) => ({
        regex: `(^|/)${folder}/${others(files)}`,
        caseSensitive: true,
        allowTypeImports: true,
        message: `only ${folder}/{${files.join(',')}} may be imported here (types aside): the rest is ${unsafe}`,
      })),
      ...(siblings
        ? [
            {
              regex: `^\\./${others(siblings)}`,
              caseSensitive: true,
              allowTypeImports: true,
              message: `only ./{${siblings.join(',')}} may be imported here (types aside): the rest is ${unsafe}`,
            },
          ]
        : []),
    ],
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'reports/**', 'external/**/*.js', '.t1/**', 'tests/fixtures/histories/**'] },
  {
    files: ['**/*.ts', '**/*.mts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-debugger': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: SANDBOX_FOLDERS.map((folder) => `${folder}/**/*.ts`),
    rules: { '@typescript-eslint/no-restricted-imports': sandboxRule(null) },
  },
  ...Object.entries(SANDBOX_FILES).map(([folder, files]) => ({
    files: files.map((file) => `${folder}/${file}.ts`),
    rules: { '@typescript-eslint/no-restricted-imports': sandboxRule(files) },
  })),
);
