import numpy as np
import pytest

from animation_lora.metrics import psnr_from_mse, ssim


def test_ssim_is_one_for_equal_images_and_lower_for_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < 0.9


def test_psnr_of_8_bit_images_from_their_mean_squared_error():
    assert psnr_from_mse(100.0) == pytest.approx(28.1308, abs=1e-4)
    assert psnr_from_mse(0.0) == float("inf")
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)
