"""The portal's pages, one module per job: signing in and out (auth), the jacket, the exam
viewer and download (exam), the images themselves (images), shares for the care team (shares)."""
