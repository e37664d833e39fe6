"""Caption data: file formats, image loading, the embedded scene corpus, augmentation, datasets and the data module
(the train/val/test loaders)."""
