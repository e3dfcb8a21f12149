// ESLint flat config: typescript-eslint's type-checked rules for the app,
// the recommended rules for the Node scripts and tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = {
  process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly',
  clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly',
};
const browserInPage = {
  window: 'readonly', document: 'readonly', location: 'readonly', navigator: 'readonly',
  localStorage: 'readonly', performance: 'readonly', atob: 'readonly', btoa: 'readonly', history: 'readonly',
  getComputedStyle: 'readonly',
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'test-results/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.{ts,tsx}'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json', './tsconfig.sw.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-restricted-syntax': ['error',
        { selector: "JSXAttribute[name.name='style'] > Literal", message: 'No style strings: CSP forbids inline styles; use classes or a style object (CSSOM).' },
        { selector: "JSXAttribute[name.name='style'] > JSXExpressionContainer > TemplateLiteral", message: 'No style strings: CSP forbids inline styles.' },
        { selector: "CallExpression[callee.property.name='setAttribute'][arguments.0.value='style']", message: 'No style attributes: CSP forbids them.' },
        { selector: "CallExpression[callee.name='eval']", message: 'No eval: CSP forbids it.' },
        { selector: "NewExpression[callee.name='Function']", message: 'No Function(): CSP forbids it.' },
      ],
    },
  },
  {
    files: ['scripts/**/*.mjs', 'test/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { ...nodeGlobals, ...browserInPage } },
  },
);
