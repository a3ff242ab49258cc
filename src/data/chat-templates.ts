/**
 * Chat templates for a model directory without one (`--chat-template FILE|NAME`, a recipe's
 * tokenizer.chat_template): a Jinja file, or one of these names. The texts are the ones the model
 * families publish in their tokenizer_config.json (ChatML as Qwen / OpenHermes use it; Llama-2-chat's
 * [INST] format; Zephyr's), written once here.
 */
import * as fs from 'node:fs';
import { requireRegularFile } from '../io/regular-file.js';
import { decodeUtf8 } from '../io/utf8.js';

export const NAMED_CHAT_TEMPLATES: Readonly<Record<string, string>> = {
  chatml: "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  'llama-2': "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    + '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}'
    + "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    + "{% else %}{% set content = message['content'] %}{% endif %}"
    + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    + "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
  zephyr: "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}"
    + "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
};

/** The template text of `--chat-template FILE|NAME`: an existing file's contents, else a known name. */
export function resolveChatTemplate(spec: string): string {
  if (fs.existsSync(spec)) {
    requireRegularFile(spec, 'chat template file');
    const text = decodeUtf8(fs.readFileSync(spec), spec);
    if (text.trim() === '') throw new Error(`${spec}: empty chat template file`);
    return text;
  }
  const named = NAMED_CHAT_TEMPLATES[spec];
  if (named === undefined) {
    throw new Error(`--chat-template ${JSON.stringify(spec)}: no such file, and not a known template (${Object.keys(NAMED_CHAT_TEMPLATES).join(', ')})`);
  }
  return named;
}
