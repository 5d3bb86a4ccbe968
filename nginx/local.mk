## nginx/: deployment samples
