"""Native (C++) kernels jaxcnn can use on CPU: oneDNN convolutions (:mod:`.onednn`)."""
