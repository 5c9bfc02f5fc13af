"""Fine-tuning BERT with deq's attention modes in the training loop (issue 3, "GLUE fine-tuned").

Modules:

* ``modes``   -- attention-mode grammar and the training-capable replacement of Hugging Face's
  ``BertSelfAttention`` (dense, static sparse, Sanger, DEQ, three-level), with the EMA-calibrated 4-bit
  predictor, detached masks and the straight-through estimator, as the reference repositories train.
* ``glue``    -- GLUE TSV readers (CoLA, SST-2, MRPC, STS-B, RTE) and the GLUE metrics.
* ``finetune_glue`` -- the command-line fine-tuning / evaluation script.
* ``export``  -- writes a fine-tuned model as a Hugging Face directory (config.json with a "deq" section,
  vocab.txt, model.safetensors with the per-layer quantizer thresholds) and loads it back.
"""
