"""Caption data: file formats, image loading, the embedded scene corpus, augmentation, datasets."""
