// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The functional core may not reach the outside world: no I/O, no clock, no randomness. */
const coreFiles = ['src/schema/**/*.ts', 'src/reconciler/**/*.ts'];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'dist-bench/',
      'node_modules/',
      'coverage/',
      'bin/',
      'src/schema/compiled-validators.*',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: coreFiles,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'The core does no I/O: pass data in from src/git or src/agent.' },
            {
              group: [
                'fs',
                'fs/*',
                'path',
                'os',
                'child_process',
                'crypto',
                'http',
                'https',
                'net',
                'process',
              ],
              message: 'The core does no I/O.',
            },
            {
              group: ['isomorphic-git', 'isomorphic-git/*', 'got'],
              message: 'Only src/git talks to git and the network.',
            },
            {
              group: ['**/git/*', '**/agent/*', '**/cli/*'],
              message: 'Dependencies point inward: the core may not import the shell.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No environment in the core: pass values in.' },
        { name: 'Date', message: 'No clock in the core: time comes in as an argument.' },
        { name: 'setTimeout', message: 'No timers in the core.' },
        { name: 'fetch', message: 'No network in the core.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'No randomness in the core.' },
        { object: 'crypto', property: 'getRandomValues', message: 'No randomness in the core.' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
