"""The lab's end-to-end study: reproduce the harmfulness-vs-refusal findings on a model."""
