"""Speech data: audio reading, manifests and importers, the embedded eSpeak NG corpus, augmentation, loaders."""
