export * from './dtype.js';
export * from './file-format-error.js';
export * from './python-json.js';
export * from './atomic.js';
export * from './safetensors-reader.js';
export * from './safetensors-writer.js';
export * from './checkpoint.js';
export * from './hf-dir.js';
