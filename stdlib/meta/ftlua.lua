---@meta
-- LuaLS type stubs for ftlua's Lua API (editor completion and checking). Point your editor's
-- Lua language server at this directory: "workspace.library": ["<ftlua>/stdlib/meta"].

---@class ftlua
---@field data ftlua.data
---@field model ftlua.model
---@field device ftlua.device
---@field log ftlua.log
---@field json ftlua.json
---@field version string
local ftlua = {}

---@class ftlua.data
local data = {}

---@class ftlua.QaOptions
---@field max_source_len? integer Prompt length cap in tokens (bytes), EOS included. Default 512.
---@field max_target_len? integer Answer length cap in tokens, EOS included. Default 64.
---@field template? string Prompt with {question} and {context}. Default "question: {question} context: {context}".
---@field fields? {question?: string, context?: string, answer?: string} JSON field names.

--- Loads a JSONL file of {"question", "context", "answer"} objects. A bad line is an error naming
--- the file, the line and the problem.
---@param path string
---@param opts? ftlua.QaOptions
---@return ftlua.Dataset
function data.qa(path, opts) end

--- A dataset from a Lua table of samples ({question, context, answer}) or documents
--- ({context, qas = {{question, answer}, ...}}). A bad item is an error naming its index and field.
---@param items table[]
---@param opts? ftlua.QaOptions
---@return ftlua.Dataset
function data.from_table(items, opts) end

--- A seeded random stream (the kind the trainer passes to `augment` functions).
---@param seed integer
---@return ftlua.Rng
function data.rng(seed) end

---@class ftlua.Rng
local Rng = {}

--- As math.random: () -> float in [0, 1); (n) -> integer in [1, n]; (m, n) -> integer in [m, n].
---@param m? integer
---@param n? integer
---@return number
function Rng:random(m, n) end

---@class ftlua.Dataset
local Dataset = {}

--- K train/eval pairs whose eval sides partition the samples into folds of near-equal size;
--- questions about the same context stay in one fold.
---@param opts? {k?: integer, seed?: integer} k default 5, seed 42.
---@return {train: ftlua.Dataset, eval: ftlua.Dataset}[]
function Dataset:kfold(opts) end

--- A new dataset with `fn` applied to each sample (once, now); `fn` must return a sample table.
--- For noise drawn anew each epoch, give the trainer `augment = fn` instead.
---@param fn fun(sample: {question: string, context: string, answer: string}): {question: string, context: string, answer: string}
---@return ftlua.Dataset
function Dataset:map(fn) end

--- Splits into train and eval; questions about the same context stay on one side.
---@param opts? {eval_fraction?: number, seed?: integer}
---@return ftlua.Dataset train
---@return ftlua.Dataset eval
function Dataset:split(opts) end

---@return integer
function Dataset:len() end

--- The sample at `index` (1-based) with its prompt.
---@param index integer
---@return {question: string, context: string, answer: string, prompt: string}
function Dataset:sample(index) end

--- Writes the samples as JSONL (question, context, answer).
---@param path string
function Dataset:write_jsonl(path) end

---@class ftlua.model
local model = {}

---@class ftlua.T5Options
---@field preset? "micro"|"tiny"|"small" Byte-level presets (vocabulary 384). Default "tiny".
---@field tokenizer? string An HF tokenizer.json (e.g. T5's SentencePiece); default: bytes (ByT5). vocab_size must hold its tokens.
---@field d_model? integer
---@field d_kv? integer
---@field d_ff? integer
---@field num_layers? integer
---@field num_decoder_layers? integer
---@field num_heads? integer
---@field dropout_rate? number
---@field feed_forward_proj? "relu"|"gated-gelu"
---@field tie_word_embeddings? boolean

--- A T5 description (HF config.json fields over a preset); the trainer creates its weights.
---@param opts? ftlua.T5Options
---@return ftlua.Model
function model.t5(opts) end

--- A model whose weights start from a checkpoint directory (config.json + model.safetensors, or a
--- sharded model.safetensors.index.json), HF's or ftlua's.
---@param dir string
---@return ftlua.Model
function model.load(dir) end

---@class ftlua.Model
local Model = {}

--- Parameter count (without allocating the model), config, and the weights directory if any.
---@return {parameters: integer, config: table, weights?: string}
function Model:info() end

--- Answers one question with this model's weights (loaded for the call; a model without weights
--- is freshly initialized). Greedy by default; num_beams > 1 runs HF-equivalent beam search.
--- For many questions, `ftlua predict` is faster.
---@param opts {question: string, context: string, num_beams?: integer, max_new_tokens?: integer, length_penalty?: number, template?: string, max_source_len?: integer}
---@return string answer
function Model:generate(opts) end

--- Writes config.json + model.safetensors (HF's layout) into `dir`, atomically.
---@param dir string
function Model:save(dir) end

---@class ftlua.device
local device = {}

--- The device the run trains on: kind, name, memory in bytes (host memory within the container's
--- limit on CPU; from nvidia-smi on CUDA) and CPU cores; and this process's place in a
--- data-parallel run (`torchrun`/`mpirun`): rank, world_size (1 when run alone) and local_rank.
---@return {kind: "cpu"|"cuda", name: string, memory_total?: integer, memory_free?: integer, cuda_available: boolean, cuda_devices: integer, cores: integer, rank: integer, world_size: integer, local_rank: integer}
function device.info() end

---@class ftlua.json
local json = {}

--- Encodes a Lua value as pretty JSON (sorted keys).
---@param value any
---@return string
function json.encode(value) end

--- Decodes JSON text.
---@param text string
---@return any
function json.decode(text) end

---@class ftlua.log
local log = {}
---@param message string
function log.info(message) end
---@param message string
function log.warn(message) end
---@param message string
function log.debug(message) end

---@alias ftlua.Event "train_begin"|"epoch_begin"|"step_begin"|"substep_end"|"pre_optimizer_step"|"step_end"|"log"|"eval_begin"|"eval_end"|"save"|"oom"|"nan"|"epoch_end"|"train_end"

---@class ftlua.State Read-only snapshot handed to handlers.
---@field epoch number
---@field global_step integer
---@field max_steps integer
---@field samples_seen integer
---@field tokens_seen integer
---@field lr number
---@field batch_size integer
---@field grad_accum integer
---@field weight_decay number
---@field loss? number Loss of the last optimizer step.
---@field train_loss? number Mean loss since the previous log event.
---@field grad_norm? number
---@field best? {metric: string, value: number, step: integer}
---@field elapsed_seconds number
---@field stop_reason? string

---@class ftlua.Decision What a handler may return; Rust validates and applies it between steps.
---@field stop? boolean|string Stop training (a string is the reason).
---@field reason? string Why, when stop = true.
---@field save? boolean
---@field eval? boolean
---@field lr? number Replace the schedule with this learning rate.
---@field batch_size? integer
---@field grad_accum? integer
---@field weight_decay? number
---@field find_batch_size? integer Search for the largest batch that fits, up to this (see ftlua.oom).
---@field max_source_len? integer Cut training prompts to this many tokens from now on.

---@alias ftlua.Handler fun(state: ftlua.State, metrics?: table<string, number>): ftlua.Decision?

---@class ftlua.TrainerOptions: table Settings (see the README's table) plus:
---@field model ftlua.Model
---@field train ftlua.Dataset
---@field eval? ftlua.Dataset
---@field schedule? fun(step: integer, max_steps: integer, warmup_steps: integer): number
---@field callbacks? table[] Tables with on_<event> methods (and optional state_dict/load_state_dict).
---@field best? {metric?: string, greater_is_better?: boolean, load_at_end?: boolean}
---@field metrics? table<string, fun(predictions: string[], references: string[]): number> Reported as eval_<name>.
---@field augment? fun(sample: table, rng: ftlua.Rng): table Applied to each training sample at every epoch's start (see ftlua.augment).

--- Creates a trainer. Unknown settings are errors (with the nearest known name).
---@param opts ftlua.TrainerOptions
---@return ftlua.Trainer
function ftlua.trainer(opts) end

---@class ftlua.Trainer
local Trainer = {}

--- Registers a handler for an event.
---@param event ftlua.Event
---@param handler ftlua.Handler
function Trainer:on(event, handler) end

--- Trains; returns the final state, the last evaluation, the best checkpoint and the trained
--- model (`model`: its weights are the run's final ones, for `model:generate` or `model:save`).
---@return {state: ftlua.State, metrics: table<string, number>, best?: {metric: string, value: number, step: integer}, global_step: integer, stop_reason?: string, output_dir: string, model: ftlua.Model, diagnosis: table}
function Trainer:fit() end

return ftlua
