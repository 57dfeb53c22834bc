"""What a domain declares in its `domain.yaml`: the model (products, columns, expectations, access),
how a descriptor file is read, the rules across descriptors and the JSON schema editors use.

May import only: `sql`, `text`, `governance.masking` (the masking policies a column's `mask` names); the
descriptor is what everything else reads, so it reads nothing else of the platform.
"""
